"""Every error the gateway core raises; catch `HandoffError` to catch them all.

Tree (each class has a stable `code` the transport sends to clients, and a Chinese
`message_zh` that is safe to show to borrowers and agents):

    HandoffError
    ├── ConfigError            bad settings / policy file (raised at start-up)
    ├── ValidationError        bad input (empty or too long text, bad score, bad phone ...)
    ├── AuthError              wrong password, expired or forged token
    ├── PermissionDenied       the caller may not do this
    │   ├── IdentityMismatch   a session id bound to another borrower identity
    │   └── NotSessionHolder   an agent acting on a session it does not hold
    ├── NotFound               unknown session, agent or callback
    ├── ConflictError          the state changed under the caller
    │   ├── IllegalTransition  the state machine forbids this event in this state
    │   └── AlreadyClaimed     another agent won the claim race
    ├── CapacityReached        the agent already holds its maximum number of sessions
    ├── RateLimited            too many messages; `retry_after` seconds to wait
    └── StoreUnavailable       the database cannot be reached; nothing was stored, retry later
"""

from __future__ import annotations


class HandoffError(Exception):
    """Root of the package's exceptions."""

    code = "handoff_error"
    message_zh = "系统繁忙，请稍后再试"

    def __init__(self, message: str = "", *, message_zh: str | None = None) -> None:
        super().__init__(message or self.code)
        if message_zh is not None:
            self.message_zh = message_zh

    def to_dict(self) -> dict[str, object]:
        """What the transport sends to a client (never internal details beyond the code)."""
        return {"code": self.code, "message": self.message_zh}


class ConfigError(HandoffError):
    code = "config_error"
    message_zh = "网关配置错误"


class ValidationError(HandoffError):
    code = "invalid_input"
    message_zh = "输入内容无效"


class AuthError(HandoffError):
    code = "auth_failed"
    message_zh = "身份验证失败，请重新登录"


class PermissionDenied(HandoffError):
    code = "forbidden"
    message_zh = "您没有权限执行此操作"


class IdentityMismatch(PermissionDenied):
    code = "identity_mismatch"
    message_zh = "会话与当前用户不匹配"


class NotSessionHolder(PermissionDenied):
    code = "not_holder"
    message_zh = "该会话不由您接待"


class NotFound(HandoffError):
    code = "not_found"
    message_zh = "未找到相关记录"


class ConflictError(HandoffError):
    code = "conflict"
    message_zh = "会话状态已变化，请刷新后重试"


class IllegalTransition(ConflictError):
    code = "illegal_transition"
    message_zh = "当前会话状态不允许此操作"

    def __init__(self, state: str, event: str) -> None:
        super().__init__(f"event {event!r} is not allowed in state {state!r}")
        self.state = state
        self.event = event


class AlreadyClaimed(ConflictError):
    code = "already_claimed"
    message_zh = "该会话已被其他坐席接入"


class CapacityReached(HandoffError):
    code = "capacity_reached"
    message_zh = "您接待的会话已达上限"


class RateLimited(HandoffError):
    code = "rate_limited"
    message_zh = "发送太频繁，请稍后再试"

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited, retry after {retry_after:.1f}s")
        self.retry_after = retry_after

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "retry_after": round(self.retry_after, 1)}


class StoreUnavailable(HandoffError):
    """The database is unreachable (restarting, network). Nothing in the failed call was
    stored, so the client may retry the same message (same client_msg_id) later."""

    code = "store_unavailable"
    message_zh = "系统暂时无法保存消息，本条消息未发送，请稍后重试"
