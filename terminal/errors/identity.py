"""Failures of faces, identification, credentials and the checkout session's steps."""

from __future__ import annotations

from terminal.errors.core import TerminalError


class FaceError(TerminalError):
    """No usable face."""

    code = "FACE_UNUSABLE"
    message_zh = "未能看清面部，请正对摄像头、摘下口罩后重试。"
    message_en = "Your face could not be seen clearly; face the camera, remove any mask and try again."


class NoFaceError(FaceError):
    """No face passed detection and the quality gate."""

    code = "FACE_NOT_FOUND"
    message_zh = "未检测到人脸，请站到摄像头正前方后重试。"
    message_en = "No face was found; stand in front of the camera and try again."


class FaceQualityError(FaceError):
    """A face was found but cannot be used."""

    code = "FACE_QUALITY"
    message_zh = "面部过小或不完整，请靠近一些、让整张脸进入画面后重试。"
    message_en = "The face is too small or cut off; come closer with your whole face in view and try again."


class FaceMaskedError(FaceQualityError):
    """The lower half of the face is covered (a surgical mask): ask the patient to lower it."""

    code = "FACE_MASKED"
    message_zh = "请摘下口罩，露出口鼻后再试一次。"
    message_en = "Please lower your mask so your nose and mouth show, then try again."


class IdentityError(TerminalError):
    """Identification cannot proceed."""

    code = "IDENTITY_FAILED"
    message_zh = "未能确认身份，请重试，或改用医保码、社保卡或身份证。"
    message_en = "Your identity could not be confirmed; try again, or use the QR code, card or ID."


class ConsentError(IdentityError):
    """Face data without recorded consent."""

    code = "CONSENT_MISSING"
    message_zh = "未记录本人对人脸信息的单独同意，不能使用刷脸；请改用医保码、社保卡或身份证。"
    message_en = "No separate consent to face data is recorded; use the QR code, card or ID instead."


class UnknownPersonError(IdentityError):
    """The person is not enrolled."""

    code = "PERSON_UNKNOWN"
    message_zh = "本终端没有您的登记信息，请改用医保码、社保卡或身份证，或到人工窗口办理。"
    message_en = "This terminal does not know you; use the QR code, card or ID, or go to the counter."


class NotEnrolledForModelError(UnknownPersonError):
    """The person has face templates, but none made by the running embedder (it was changed)."""

    code = "PERSON_NOT_ENROLLED_FOR_MODEL"
    message_zh = "本终端刷脸模型已更新，您需重新采集人脸；现请改用医保码、社保卡或身份证。"
    message_en = (
        "This terminal's face model changed and your face must be enrolled again; use the QR code, card "
        "or ID now."
    )


class AttemptsExhaustedError(IdentityError):
    """Too many failed face attempts; offer QR, card or ID instead."""

    code = "FACE_ATTEMPTS_EXHAUSTED"
    message_zh = "刷脸失败次数过多，请改用医保码、社保卡或身份证。"
    message_en = "Too many failed face attempts; use the QR code, card or ID instead."


class FacePausedError(AttemptsExhaustedError):
    """Too many failed identifications on this terminal within the window: face is paused for everyone."""

    code = "FACE_PAUSED"
    message_zh = "本机刷脸暂停使用一段时间，请使用医保码或社保卡，或到人工窗口办理。"
    message_en = "Face payment is paused here for a while; use the QR code or card, or go to the counter."


class CredentialAttemptsError(IdentityError):
    """Too many typed ID numbers in one checkout."""

    code = "CREDENTIAL_ATTEMPTS_EXHAUSTED"
    message_zh = "身份证号输入次数过多，请使用医保码或社保卡，或到人工窗口出示身份证办理。"
    message_en = "Too many ID numbers entered; use the QR code or card, or show your ID card at the counter."


class IdNumberMistypedError(IdentityError):
    """A typed ID number fails the GB 11643 check digit or names no valid birth date."""

    code = "ID_NUMBER_MISTYPED"
    message_zh = "身份证号码有误（校验位不符），请核对后重新输入。"
    message_en = "The ID number is mistyped (its check digit does not match); check it and type it again."


class SecondFactorRequiredError(IdentityError):
    """The gallery is above the 1:N cap: the face is searched only among the last four ID characters."""

    code = "SECOND_FACTOR_REQUIRED"
    message_zh = "请输入身份证号码的后四位，以完成刷脸识别。"
    message_en = "Enter the last four characters of your ID number to finish the face check."


class CardNotGenuineError(IdentityError):
    """The card did not prove possession: unknown issuer, forged certificate, cloned key or replay."""

    code = "CARD_NOT_GENUINE"
    message_zh = "社保卡校验未通过，请重新插卡；仍不行请改用医保码或到人工窗口办理。"
    message_en = "The card could not be verified; insert it again, or use the QR code or go to the counter."


class EcTokenError(IdentityError):
    """The 医保电子凭证 QR token could not be resolved to a person."""

    code = "EC_TOKEN_INVALID"
    message_zh = "医保码无法识别，请在手机上刷新医保码后重新扫码。"
    message_en = "The QR code was not recognised; refresh it on your phone and scan again."


class EcTokenExpiredError(EcTokenError):
    """The QR token is past its validity (a few minutes on the upstream's clock)."""

    code = "EC_TOKEN_EXPIRED"
    message_zh = "医保码已过期，请在手机上刷新后重新扫码。"
    message_en = "The QR code has expired; refresh it on your phone and scan again."


class EcTokenUsedError(EcTokenError):
    """The QR token was already used once (tokens are single-use)."""

    code = "EC_TOKEN_USED"
    message_zh = "该医保码已使用过，请在手机上刷新后重新扫码。"
    message_en = "This QR code was already used; refresh it on your phone and scan again."


class EcTokenUnavailableError(EcTokenError):
    """The upstream that resolves QR tokens did not answer (or none is configured)."""

    code = "EC_TOKEN_UNAVAILABLE"
    message_zh = "暂时无法核验医保码，请改用社保卡或到人工窗口办理。"
    message_en = "The QR code cannot be checked right now; use your card or go to the counter."


class SessionStateError(TerminalError):
    """An action that the session's current state does not allow (e.g. confirm before pricing)."""

    code = "SESSION_STATE"
    message_zh = "当前步骤不能进行此操作，请按屏幕提示继续，或取消后重新开始。"
    message_en = "This cannot be done at this step; follow the screen, or cancel and start again."


class SessionChangedError(SessionStateError):
    """The session, its bill or the amounts differ from what the request says the patient saw."""

    code = "SESSION_CHANGED"
    message_zh = "账单或金额已变化，未扣费；请重新核对屏幕上的金额后再确认。"
    message_en = (
        "The bill or the amounts changed; nothing was charged. Check the amounts shown and confirm again."
    )
