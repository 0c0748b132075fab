// Trainer inbox: GET /api/trainer/inbox with the login token. Data is placed with textContent
// only (dom.js), so borrower text can never inject markup.
import { el, setChildren } from "./dom.js";
import { staffLogin } from "./login.js";

const $ = (id) => document.getElementById(id);

const auth = staffLogin({
  tokenKey: "loanbot.trainer.token",
  viewId: "inbox-view",
  roles: ["trainer", "supervisor"],
  roleError: "仅训练师或主管可查看训练收件箱",
  onStart: load,
});

$("refresh").addEventListener("click", () => load());
$("show-all").addEventListener("change", () => load());

function when(iso) {
  return iso ? new Date(iso).toLocaleString("zh-CN", { hour12: false }) : "—";
}

async function load() {
  const token = auth.token();
  if (!token) return;
  $("inbox-error").textContent = "";
  const params = new URLSearchParams({ all: $("show-all").checked ? "1" : "0" });
  const res = await fetch(`/api/trainer/inbox?${params}`, { headers: { Authorization: `Bearer ${token}` } });
  const body = await res.json().catch(() => ({}));
  if (res.status === 401 || res.status === 403) {
    auth.expired(body.message || "请重新登录");
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

auth.resume();
