"""The base error and the failures of configuration, models, images and datasets."""

from __future__ import annotations

from typing import ClassVar


class TerminalError(Exception):
    """Base of every error the terminal raises on purpose."""

    code: ClassVar[str] = "TERMINAL_ERROR"
    message_zh: ClassVar[str] = "终端出现故障，请到人工窗口办理，并请技术人员查看。"
    message_en: ClassVar[str] = (
        "The terminal hit a problem; please go to the counter and ask a technician to look."
    )

    def as_json(self) -> dict[str, str]:
        """The answer the service gives: pages pick message_zh or message_en by code; detail is for staff."""
        return {
            "code": self.code,
            "message_zh": self.message_zh,
            "message_en": self.message_en,
            "detail": str(self),
        }


class ConfigError(TerminalError):
    """The configuration cannot be used."""

    code = "CONFIG_INVALID"
    message_zh = "终端配置有误，暂停服务；请技术人员按提示修改配置后运行 medpay config validate。"
    message_en = (
        "The terminal's configuration is invalid; a technician fixes it and runs medpay config validate."
    )


class SimulatorScriptError(ConfigError):
    """A simulator script that cannot be run."""

    code = "SIMULATOR_SCRIPT_INVALID"
    message_zh = "设备模拟脚本无法运行；请按提示修改脚本后重试。"
    message_en = "The device simulator script cannot be run; fix the script as described and try again."


class TerminalBusyError(TerminalError):
    """The terminal's models and database stayed busy with another caller for longer than a request waits."""

    code = "TERMINAL_BUSY"
    message_zh = "终端正忙，请稍候几秒再试。"
    message_en = "The terminal is busy; please try again in a few seconds."


class ModelError(TerminalError):
    """A model cannot be loaded."""

    code = "MODEL_UNAVAILABLE"
    message_zh = "刷脸暂不可用，请改用医保码、社保卡或身份证；技术人员请运行 medpay doctor。"
    message_en = "Face payment is unavailable; use the QR code, card or ID. Technicians: run medpay doctor."


class ModelMissingError(ModelError):
    """A declared model file is not provisioned."""

    code = "MODEL_MISSING"
    message_zh = (
        "刷脸所需的模型文件未安装；请改用医保码、社保卡或身份证，技术人员请运行 medpay-provision models。"
    )
    message_en = (
        "A face model is not installed; use the QR code, card or ID. Technicians: run "
        "medpay-provision models."
    )


class ModelIntegrityError(ModelError):
    """A model file does not match the sha256 declared in the manifest."""

    code = "MODEL_INTEGRITY"
    message_zh = "模型文件校验失败，刷脸已停用；请改用其他方式，技术人员请重新安装模型。"
    message_en = (
        "A face model failed its checksum and face payment is off; use another way. Technicians: "
        "reinstall it."
    )


class ModelFormatError(ModelError):
    """A model file's bytes are not the ONNX protobuf the terminal reads."""

    code = "MODEL_FORMAT"
    message_zh = "模型文件格式无法解析，刷脸已停用；请改用其他方式，技术人员请重新安装模型。"
    message_en = (
        "A face model file cannot be parsed and face payment is off; use another way. Technicians: "
        "reinstall it."
    )


class ImageError(TerminalError):
    """Input bytes are not a decodable image."""

    code = "IMAGE_INVALID"
    message_zh = "图像无法识别，请重新拍摄或上传 JPEG/PNG 图片。"
    message_en = "The image cannot be read; take the picture again or upload a JPEG or PNG."


class DatasetError(TerminalError):
    """An evaluation folder is missing, empty or not laid out as the command expects."""

    code = "DATASET_INVALID"
    message_zh = "评估数据目录不存在、为空或结构不符，请按 docs/identity.md 整理目录后重试。"
    message_en = "The evaluation folder is missing, empty or laid out otherwise; see docs/identity.md."
