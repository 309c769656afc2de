"""Requests the service refuses before any work, and a terminal clock that cannot be trusted for money."""

from __future__ import annotations

from terminal.errors.core import TerminalError


class RequestRefusedError(TerminalError):
    """A request the service refuses at its edge: too large, for another host, or from another site."""

    code = "REQUEST_REFUSED"
    message_zh = "请求被终端拒绝，未做任何处理。"
    message_en = "The terminal refused this request; nothing was done."


class RequestTooLargeError(RequestRefusedError):
    """A request body over its route's cap (refused while it streams in, never stored)."""

    code = "REQUEST_TOO_LARGE"
    message_zh = "上传的内容过大，未做任何处理；请缩小后重试。"
    message_en = "What was sent is too large and nothing was done; send something smaller."


class HostNotAllowedError(RequestRefusedError):
    """A Host header that names neither this machine nor a configured name (DNS rebinding)."""

    code = "HOST_NOT_ALLOWED"
    message_zh = "请求的地址不属于本终端，已拒绝。"
    message_en = "The request was addressed to a name this terminal does not answer to."


class CrossSiteRequestError(RequestRefusedError):
    """A state-changing request sent by a page of another site (Origin or Sec-Fetch-Site)."""

    code = "CROSS_SITE_REFUSED"
    message_zh = "来自其他网页的操作请求已拒绝；请在终端自己的页面上操作。"
    message_en = "A request from another site's page was refused; use the terminal's own pages."


class ClockError(TerminalError):
    """The terminal's clock cannot be trusted: settling is paused until a technician fixes it."""

    code = "CLOCK_UNTRUSTED"
    message_zh = "终端时间异常，暂停结算，本次未扣费；请到人工窗口办理，并请技术人员校准时间。"
    message_en = (
        "The terminal's clock is wrong, so settling is paused and nothing was charged; please go to the "
        "counter and ask a technician to set the time."
    )


class ClockSkewError(ClockError):
    """The clock differs from the upstream's (measured at the last sync) by more than the allowed skew."""

    code = "CLOCK_SKEW"
    message_zh = "终端时间与医保中心相差过大，暂停结算，本次未扣费；请到人工窗口办理，并请技术人员校准时间。"
    message_en = (
        "The terminal's clock differs from the insurance centre's, so settling is paused and nothing was "
        "charged; please go to the counter and ask a technician to set the time."
    )


class ClockBackwardsError(ClockError):
    """The clock reads earlier than the latest time the terminal has recorded (settlement or audit)."""

    code = "CLOCK_BACKWARDS"
    message_zh = (
        "终端时间早于已记录的结算时间，暂停结算，本次未扣费；请到人工窗口办理，并请技术人员校准时间。"
    )
    message_en = (
        "The terminal's clock reads earlier than settlements it has already recorded, so settling is "
        "paused and nothing was charged; please go to the counter and ask a technician to set the time."
    )
