from pydantic_settings import SettingsConfigDict

from mesh.settings import ServiceSettings


class ProfileSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PM_PROFILE_", extra="ignore")
