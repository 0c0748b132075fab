// Supervisor dashboard: GET /api/dashboard?from=&to= with the login token, drawn with the
// vendored Chart.js. Text from data goes through textContent only (table cells), and
// Chart.js draws labels on a canvas, so no data is ever parsed as HTML.
/* global Chart */
import { el, setChildren, duration, label, REASONS, SKILLS } from "./dom.js";
import { staffLogin } from "./login.js";

const $ = (id) => document.getElementById(id);
const charts = {};
let refreshTimer = null;

function localInput(date) {
  const shifted = new Date(date.getTime() - date.getTimezoneOffset() * 60000);
  return shifted.toISOString().slice(0, 16);
}

function setDays(days) {
  const now = new Date();
  $("to").value = localInput(new Date(now.getTime() + 60000));
  $("from").value = localInput(new Date(now.getTime() - days * 86400000));
}

const auth = staffLogin({
  tokenKey: "loanbot.dashboard.token",
  viewId: "board-view",
  roles: ["supervisor"],
  roleError: "仅主管可查看数据看板",
  onStart: show,
  onLogout: () => clearInterval(refreshTimer),
});

$("period-form").addEventListener("submit", (event) => { event.preventDefault(); load(); });
for (const b of document.querySelectorAll("[data-days]")) {
  b.addEventListener("click", () => { setDays(Number(b.dataset.days)); load(); });
}

function show() {
  if (!$("from").value) setDays(1);
  load();
  clearInterval(refreshTimer);
  refreshTimer = setInterval(load, 30000);
}

async function load() {
  const token = auth.token();
  if (!token) return;
  $("board-error").textContent = "";
  const params = new URLSearchParams({
    from: new Date($("from").value).toISOString(),
    to: new Date($("to").value).toISOString(),
  });
  const res = await fetch(`/api/dashboard?${params}`, { headers: { Authorization: `Bearer ${token}` } });
  const body = await res.json().catch(() => ({}));
  if (res.status === 401 || res.status === 403) {
    auth.expired(body.message || "请重新登录");
    return;
  }
  if (!res.ok) { $("board-error").textContent = body.message || "加载失败"; return; }
  render(body);
  $("updated").textContent = `更新于 ${new Date().toLocaleTimeString("zh-CN")}`;
}

function percent(value) {
  return value === null || value === undefined ? "—" : `${(value * 100).toFixed(1)}%`;
}

function bar(id, labels, data, color) {
  if (charts[id]) {
    charts[id].data.labels = labels;
    charts[id].data.datasets[0].data = data;
    charts[id].update();
    return;
  }
  charts[id] = new Chart($(id), {
    type: "bar",
    data: { labels, datasets: [{ data, backgroundColor: color }] },
    options: {
      responsive: true, maintainAspectRatio: false, animation: false,
      plugins: { legend: { display: false } },
      scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
    },
  });
}

function rows(tbody, items) {
  setChildren(tbody, items.length ? items.map(([a, b]) => el("tr", {}, el("td", {}, a), el("td", {}, b)))
    : el("tr", {}, el("td", { colspan: "2", class: "meta" }, "暂无数据")));
}

function render(d) {
  $("kpi-conversations").textContent = String(d.conversations);
  $("kpi-containment").textContent = percent(d.containment_rate);
  $("kpi-contained").textContent = `未转人工 ${d.contained} / ${d.conversations}`;
  $("kpi-handoffs").textContent = String(d.handoffs);
  $("kpi-queue").textContent = String(d.queue_now.length);
  $("kpi-queue-wait").textContent = `最长等待 ${duration(d.queue_now.longest_wait_seconds)}`;
  $("kpi-wait").textContent = duration(d.waiting.average);
  $("kpi-wait-sub").textContent = `中位数 ${duration(d.waiting.median)} · ${d.waiting.count}次接入`;
  $("kpi-handle").textContent = duration(d.handle.average);
  $("kpi-handle-sub").textContent = `中位数 ${duration(d.handle.median)} · ${d.handle.count}次服务`;
  $("kpi-csat").textContent = d.csat.average === null ? "—" : `${d.csat.average.toFixed(2)}分`;
  $("kpi-csat-count").textContent = `${d.csat.count}条评价`;

  const reasons = Object.entries(d.handoffs_by_reason);
  bar("chart-reasons", reasons.map(([k]) => label(REASONS, k)), reasons.map(([, v]) => v), "#e12d39");
  bar("chart-wait", d.waiting.buckets.map((b) => b.label), d.waiting.buckets.map((b) => b.count), "#f0b429");
  bar("chart-handle", d.handle.buckets.map((b) => b.label), d.handle.buckets.map((b) => b.count), "#1565c0");
  const dist = d.csat.distribution;
  bar("chart-csat", ["1分", "2分", "3分", "4分", "5分"], ["1", "2", "3", "4", "5"].map((k) => dist[k] || 0), "#2e7d32");

  rows($("unresolved").tBodies[0], d.top_unresolved.map((u) => [u.text, String(u.count)]));
  rows($("reasons").tBodies[0], reasons.map(([k, v]) => [label(REASONS, k), String(v)]));
  rows($("queue").tBodies[0], Object.entries(d.queue_now.by_skill).map(([k, v]) => [label(SKILLS, k), String(v)]));
}

auth.resume();
