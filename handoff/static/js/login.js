// Staff log-in shared by the agent console, the dashboard and the trainer inbox. Every page
// has the same #login-view form (#login-form, #login-user, #login-pass, #login-error) and a
// #logout button; the form posts /api/login and the token lives in sessionStorage (one tab,
// gone when it closes). A page passes only what differs: its token key, its own view, which
// roles may use it, and what to do once signed in / before signing out.

const $ = (id) => document.getElementById(id);

/** POST /api/login; resolves to {token, expires, agent}, rejects with the server's message. */
export async function login(username, password) {
  const res = await fetch("/api/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username, password }),
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.message || "登录失败");
  return body;
}

/**
 * Wire the page's login form and logout button.
 * options: tokenKey (sessionStorage key), viewId (the page's view shown once signed in),
 * roles + roleError (only these roles may sign in here; null = any), onStart(token) (called
 * after signing in and on resume), onLogout() (called before the token is dropped).
 * Returns {token(), expired(message), resume()}: expired() drops the token and shows the form
 * with `message`; resume() starts with a token kept from before a reload.
 */
export function staffLogin({ tokenKey, viewId, roles = null, roleError = "", onStart, onLogout = null }) {
  function showView() {
    $("login-view").hidden = true;
    $(viewId).hidden = false;
  }

  function expired(message) {
    sessionStorage.removeItem(tokenKey);
    $(viewId).hidden = true;
    $("login-view").hidden = false;
    $("login-error").textContent = message || "";
  }

  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("login-error").textContent = "";
    let result;
    try {
      result = await login($("login-user").value.trim(), $("login-pass").value);
    } catch (err) {
      $("login-error").textContent = err.message;
      return;
    }
    if (roles && !(result.agent && roles.includes(result.agent.role))) {
      $("login-error").textContent = roleError;
      return;
    }
    sessionStorage.setItem(tokenKey, result.token);
    $("login-pass").value = "";
    showView();
    onStart(result.token);
  });

  $("logout").addEventListener("click", () => {
    if (onLogout) onLogout();
    expired("");
  });

  return {
    token: () => sessionStorage.getItem(tokenKey),
    expired,
    resume() {
      const saved = sessionStorage.getItem(tokenKey);
      if (saved) {
        showView();
        onStart(saved);
      }
    },
  };
}
