from pydantic_settings import SettingsConfigDict

from mesh.settings import ServiceSettings


class CollaborationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PM_COLLABORATION_", extra="ignore")
