"""Wire contract: the national-style request and response envelopes and the operation codes we use."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from terminal.domain import (
    INFNO_AUDIT_HEAD as INFNO_AUDIT_HEAD,
)
from terminal.domain import (  # re-exported: the wire speaks the domain's operation numbers
    INFNO_CORRECT as INFNO_CORRECT,
)
from terminal.domain import (
    INFNO_DOWNLOAD as INFNO_DOWNLOAD,
)
from terminal.domain import (
    INFNO_GALLERY as INFNO_GALLERY,
)
from terminal.domain import (
    INFNO_QUERY as INFNO_QUERY,
)
from terminal.domain import (
    INFNO_REGISTER as INFNO_REGISTER,
)
from terminal.domain import (
    INFNO_REVERSE as INFNO_REVERSE,
)
from terminal.domain import (
    INFNO_SETTLE as INFNO_SETTLE,
)
from terminal.domain import (
    INFNO_SIGN_IN as INFNO_SIGN_IN,
)
from terminal.domain import (
    INFNO_TOTALS as INFNO_TOTALS,
)

# 人员信息获取: with mdtrt_cert_type 01 the national platform resolves a 医保电子凭证 token online.
INFNO_PERSON_INFO = "1101"

INFCODE_OK = 0
INFCODE_FAIL = -1

SIGNTYPE = "SM2"  # cainfo: SM2 with the SM3 digest (terminal/uplink/sm_crypto.py)
CALL_PATH = "/fsi/api/callService"


class Request(BaseModel):
    """The request envelope (domain.md §1.1); `cainfo` carries the terminal's signature."""

    model_config = ConfigDict(extra="forbid")

    infno: str = Field(pattern=r"^\d{4}$", description="interface code")
    msgid: str = Field(min_length=1, max_length=30, description="sender message id; the idempotency key")
    mdtrtarea_admvs: str = Field(pattern=r"^\d{6}$", description="area where treatment happens")
    insuplc_admdvs: str = Field(default="", max_length=6, description="insured person's area code")
    recer_sys_code: str = Field(default="MEDPAY", max_length=10, description="receiving system code")
    dev_no: str = Field(default="", max_length=100, description="device number")
    infver: str = Field(default="V1.0", description="interface version")
    opter_type: Literal["2"] = Field(description="2 = self-service terminal")
    opter: str = Field(min_length=1, max_length=30, description="terminal id")
    opter_name: str = Field(default="", max_length=50, description="terminal name")
    inf_time: str = Field(pattern=r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", description="transaction time")
    fixmedins_code: str = Field(pattern=r"^[A-Z0-9]{12}$", description="designated institution code")
    fixmedins_name: str = Field(default="", max_length=20, description="designated institution name")
    sign_no: str = Field(default="", max_length=30, description="sign-in serial number from 9001")
    signtype: str = Field(default="", description="signature algorithm of cainfo")
    cainfo: str = Field(default="", description="base64 SM2 signature (r‖s) over the envelope without cainfo")
    input: dict[str, Any] = Field(description="business payload")


class Response(BaseModel):
    """The response envelope (domain.md §1.2)."""

    model_config = ConfigDict(extra="forbid")

    infcode: Literal[0, -1] = Field(description="0 success, -1 failure")
    inf_refmsgid: str = Field(default="", description="receiver message id")
    refmsg_time: str = Field(default="", description="yyyyMMddHHmmssSSS the request was received")
    respond_time: str = Field(default="", description="yyyyMMddHHmmssSSS the response was made")
    err_msg: str = Field(default="", max_length=200, description="error text when infcode is -1")
    output: dict[str, Any] = Field(default_factory=dict, description="business output")


def envelope_problem(envelope: Mapping[str, Any]) -> str:
    """Why the wire contract refuses a request envelope, in one line; "" when it is valid."""
    try:
        Request.model_validate(dict(envelope))
    except ValidationError as exc:
        # One line per field, without pydantic's URLs: stored with the parked entry, shown to technicians.
        return "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'envelope'}: {err['msg']}" for err in exc.errors()
        )
    return ""
