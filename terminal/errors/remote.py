"""Failures of devices (readers, camera) and of the remote parties: the HIS and the upstream."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from terminal.errors.core import TerminalError


class DeviceError(TerminalError):
    """A serial device failed."""

    code = "DEVICE_FAILED"
    message_zh = "读卡器、扫码器或打印机出现故障，请改用其他方式或到人工窗口办理。"
    message_en = "A card reader, scanner or printer failed; use another way or go to the counter."


class FrameError(DeviceError):
    """A garbled serial frame."""

    code = "DEVICE_FRAME"
    message_zh = "设备返回的数据无法识别，请重新刷卡或扫码；仍不行请技术人员检查连线。"
    message_en = (
        "A device sent data that cannot be read; scan or insert the card again. If it persists, "
        "check the cable."
    )


class CameraError(DeviceError):
    """The kiosk camera cannot be used (a bad URL, a device that is gone); face is not offered."""

    code = "CAMERA_FAILED"
    message_zh = "摄像头无法使用，暂不能刷脸；请改用医保码或社保卡，并请技术人员检查摄像头。"
    message_en = (
        "The camera cannot be used, so face is unavailable; use the QR code or card and ask a technician."
    )


class CameraUnavailableError(CameraError):
    """The camera cannot be opened, or stopped delivering frames (unplugged, stream or clip ended)."""

    code = "CAMERA_UNAVAILABLE"
    message_zh = "摄像头没有画面，暂不能刷脸；请改用医保码或社保卡，并请技术人员检查摄像头连线。"
    message_en = (
        "The camera delivers no picture, so face is unavailable; use the QR code or card and ask a "
        "technician to check the camera cable."
    )


class DemoCameraRefusedError(CameraError):
    """A synthetic:// or file:// camera configured outside demo mode: it would show recorded faces."""

    code = "CAMERA_DEMO_SOURCE"
    message_zh = (
        "摄像头配置为演示画面（合成或录像），正式模式下不能使用：它会把录好的人脸当作真人。"
        "请技术人员在 [camera] url 填写真实摄像头（如 v4l2:///dev/video0）。"
    )
    message_en = (
        "The camera is set to a demo source (synthetic or recorded), which production mode refuses: it "
        "would pass recorded faces as live. A technician sets [camera] url to a real camera "
        "(e.g. v4l2:///dev/video0)."
    )


class NetworkCameraRefusedError(CameraError):
    """An rtsp:// camera without [camera] allow_network_camera: anyone on the LAN could feed it."""

    code = "CAMERA_NETWORK_REFUSED"
    message_zh = (
        "摄像头配置为网络摄像头（rtsp://），未获允许：局域网内的设备可以冒充它送入假画面。"
        "请改用 USB 摄像头，或在确认网络隔离后设置 [camera] allow_network_camera = true。"
    )
    message_en = (
        "The camera is a network camera (rtsp://), which is not allowed: a device on the LAN could "
        "impersonate it and feed fake video. Use a USB camera, or set [camera] allow_network_camera = "
        "true once the network is isolated."
    )


class HisError(TerminalError):
    """The hospital's HIS did not give the bills; the patient is sent to the counter."""

    code = "HIS_ERROR"
    message_zh = "医院收费系统暂时无法提供账单，请到人工窗口缴费。"
    message_en = "The hospital billing system cannot give your bills right now; please pay at the counter."


class HisUnavailable(HisError):
    """The HIS could not be reached, failed (5xx) or answered something unreadable."""

    code = "HIS_UNAVAILABLE"
    message_zh = "医院收费系统暂时无法连接，请到人工窗口缴费。"
    message_en = "The hospital billing system cannot be reached; please pay at the counter."


class HisTimeout(HisUnavailable):
    """The HIS did not answer within the timeout."""

    code = "HIS_TIMEOUT"
    message_zh = "医院收费系统未及时响应，请到人工窗口缴费。"
    message_en = "The hospital billing system did not answer in time; please pay at the counter."


class HisAuthError(HisError):
    """The HIS refused this terminal's bearer token, or no token is provisioned."""

    code = "HIS_AUTH"
    message_zh = "终端未获医院收费系统授权，请到人工窗口缴费；技术人员请检查 HIS 令牌。"
    message_en = (
        "The hospital billing system does not accept this terminal; pay at the counter. "
        "Technicians: check the HIS token."
    )


class HisRefused(HisError):
    """The HIS answered that it will not take this request; sending it again will not help."""

    code = "HIS_REFUSED"
    message_zh = "医院收费系统拒绝了该账单（可能已缴费或不存在），请到人工窗口核对。"
    message_en = (
        "The hospital billing system refused this bill (already paid or unknown); please check at "
        "the counter."
    )


class UplinkError(TerminalError):
    """The upstream could not be reached or refused the request."""

    code = "UPLINK_ERROR"
    message_zh = "与医保中心通信失败；请稍后重试，技术人员请运行 medpay doctor。"
    message_en = "Talking to the insurance centre failed; try again later. Technicians: run medpay doctor."


class UplinkUnreachable(UplinkError):
    """Nothing reached the upstream; the request can be sent again as is."""

    code = "UPLINK_UNREACHABLE"
    message_zh = "医保中心暂时无法连接，请求未送达，可以放心重试；请检查网络。"
    message_en = (
        "The insurance centre cannot be reached and nothing was sent; it is safe to retry. Check the network."
    )


class UplinkUnknownOutcome(UplinkError):
    """The upstream may or may not have processed the request."""

    code = "UPLINK_UNKNOWN_OUTCOME"
    message_zh = "医保中心未确认结果，请勿重复支付；终端将按流水号查询后再处理。"
    message_en = (
        "The insurance centre did not confirm the result; do not pay again. The terminal asks by msgid first."
    )


class UplinkAuthRequired(UplinkError):
    """The upstream wants a fresh 9001 sign-in (or does not know this terminal's key)."""

    code = "UPLINK_AUTH"
    message_zh = (
        "医保中心不认可本终端的签到或密钥；请技术人员运行 medpay sync 重新签到，"
        "仍不行再运行 medpay-provision all 重新注册。"
    )
    message_en = (
        "The insurance centre does not accept this terminal's sign-in or key; a technician runs "
        "medpay sync to sign in again, and medpay-provision all to register again if that fails."
    )


class UplinkRefused(UplinkError):
    """The upstream answered with infcode -1."""

    code = "UPLINK_REFUSED"
    message_zh = "医保中心拒绝了该请求，重发也不会成功；请到人工窗口办理。"
    message_en = (
        "The insurance centre refused this request and resending will not help; please go to the counter."
    )

    def __init__(self, message: str, err_msg: str = "", output: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.err_msg = err_msg  # the upstream's own words (envelope err_msg)
        self.output = dict(output or {})


class AuditHeadRefused(UplinkRefused):
    """The upstream refused this terminal's audit chain head: it went backwards or forked."""

    code = "AUDIT_HEAD_REFUSED"
    message_zh = (
        "医保中心发现本终端的审计日志与此前上报的不一致（被截断、回退或改写）；"
        "请技术人员运行 medpay audit verify 并联系医保中心核查。"
    )
    message_en = (
        "The insurance centre found this terminal's audit log inconsistent with the heads it reported "
        "before (truncated, rolled back or rewritten); a technician runs `medpay audit verify` and "
        "contacts the centre."
    )


class UplinkEnvelopeInvalid(UplinkError):
    """An outbox envelope the wire contract refuses (e.g. a msgid over 30 characters): never sendable."""

    code = "UPLINK_ENVELOPE_INVALID"
    message_zh = "该笔上传报文不符合接口规范，已暂存待技术人员处理（medpay outbox）；其他结算照常上传。"
    message_en = (
        "This outbox message breaks the wire contract and was parked for a technician (medpay outbox); "
        "other settlements are still delivered."
    )


class OutboxEntryError(UplinkError):
    """A technician's outbox command names no parked entry, or one that cannot be re-queued or voided."""

    code = "OUTBOX_ENTRY"
    message_zh = "没有可处理的暂存报文；请用 medpay outbox list 查看暂存的报文及原因。"
    message_en = (
        "No parked entry can be handled that way; see `medpay outbox list` for parked entries and why."
    )


class GalleryDeltaError(UplinkError):
    """A gallery delta unsigned, tampered, malformed or meant for another terminal; nothing applied."""

    code = "GALLERY_DELTA_INVALID"
    message_zh = "人脸库更新包无效，未做任何更改；请技术人员检查医保中心的签名密钥后重新同步。"
    message_en = (
        "A face-gallery update was invalid and nothing was changed; a technician checks the "
        "signing keys and syncs again."
    )
