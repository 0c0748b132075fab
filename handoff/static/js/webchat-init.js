// Starts the vendored rasa-webchat widget (kept out of the HTML so the page's CSP can forbid
// inline scripts).
/* global WebChat */
WebChat.default({
  selector: "#webchat",
  initPayload: "你好",
  socketUrl: window.location.origin,
  socketPath: "/socket.io/",
  title: "在线客服",
  subtitle: "贷款咨询",
  inputTextFieldHint: "请输入您的问题…",
  params: { storage: "session" },
}, null);
