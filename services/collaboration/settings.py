from pydantic import Field
from pydantic_settings import SettingsConfigDict

from mesh.settings import ServiceSettings


class CollaborationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PM_COLLABORATION_", extra="ignore")

    # Web Push (VAPID, RFC 8292): the deployment's P-256 key as PEM. Empty: the key in
    # ``vapid_key_file`` (default var/vapid-private.pem), generated there on first start.
    vapid_private_key: str = Field(default="", repr=False)
    vapid_key_file: str = ""
    vapid_subject: str = Field(
        default="mailto:operator@partnermesh.invalid",
        description="the VAPID 'sub' claim: how a push service reaches the operator",
    )
    push_timeout: float = Field(default=10.0, gt=0)
    push_ttl: int = Field(default=86_400, ge=0, description="seconds a push service keeps it")
    # Push endpoints come from browsers, so from anyone: each must resolve to public
    # addresses (mesh.egress, against SSRF) unless its network is allow-listed here.
    push_egress_allow: list[str] = []
