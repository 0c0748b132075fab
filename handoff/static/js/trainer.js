// Trainer inbox: GET /api/trainer/inbox with the login token. Data is placed with textContent
// only (dom.js), so borrower text can never inject markup.
import { el, setChildren } from "./dom.js";

const TOKEN_KEY = "loanbot.trainer.token";
const ROLES = ["trainer", "supervisor"];
const $ = (id) => document.getElementById(id);

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("login-error").textContent = "";
  const res = await fetch("/api/login", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: $("login-user").value.trim(), password: $("login-pass").value }),
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) { $("login-error").textContent = body.message || "登录失败"; return; }
  if (!body.agent || !ROLES.includes(body.agent.role)) {
    $("login-error").textContent = "仅训练师或主管可查看训练收件箱";
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, body.token);
  $("login-pass").value = "";
  show();
});

$("logout").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  $("inbox-view").hidden = true;
  $("login-view").hidden = false;
});
$("refresh").addEventListener("click", () => load());
$("show-all").addEventListener("change", () => load());

function show() {
  $("login-view").hidden = true;
  $("inbox-view").hidden = false;
  load();
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString("zh-CN", { hour12: false }) : "—";
}

async function load() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) return;
  $("inbox-error").textContent = "";
  const params = new URLSearchParams({ all: $("show-all").checked ? "1" : "0" });
  const res = await fetch(`/api/trainer/inbox?${params}`, { headers: { Authorization: `Bearer ${token}` } });
  const body = await res.json().catch(() => ({}));
  if (res.status === 401 || res.status === 403) {
    sessionStorage.removeItem(TOKEN_KEY);
    $("inbox-view").hidden = true;
    $("login-view").hidden = false;
    $("login-error").textContent = body.message || "请重新登录";
    return;
  }
  if (!res.ok) { $("inbox-error").textContent = body.message || "加载失败"; return; }
  const rows = body.items.map((item) => el("tr", { "data-key": item.key_hash },
    el("td", {}, item.text),
    el("td", {}, String(item.count)),
    el("td", {}, String(item.unresolved)),
    el("td", {}, String(item.handoffs)),
    el("td", {}, item.intent || "—"),
    el("td", {}, item.confidence === null ? "—" : item.confidence.toFixed(2)),
    el("td", {}, when(item.last_seen)),
    el("td", {}, item.exported_batch || ""),
  ));
  setChildren($("inbox").querySelector("tbody"),
    rows.length ? rows : [el("tr", {}, el("td", { colspan: "8" }, "收件箱为空"))]);
  $("updated").textContent = `更新于 ${new Date().toLocaleTimeString("zh-CN", { hour12: false })}`
    + (body.predicted ? "" : "（Rasa 不可用，部分预测缺失）");
}

if (sessionStorage.getItem(TOKEN_KEY)) show();
