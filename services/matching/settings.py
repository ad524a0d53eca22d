from pydantic_settings import SettingsConfigDict

from mesh.settings import ServiceSettings


class MatchingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PM_MATCHING_", extra="ignore")

    curation_required: bool = True  # engine proposals wait for a broker before people see them
    index_sync_interval: float = 1.0  # seconds between polls of the change log (other replicas)
    capacity_window_days: int = 7  # "at most N introductions a week"
    optimise_time_limit: float = 60.0
    expert_refit_interval: float = 6 * 3600.0  # seconds between refits on forum outcomes
