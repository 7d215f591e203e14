"""Start the shopsense Serve app on this machine with the deployment options of serve/config.yaml.

    from serve.local import start
    url = start({"store": {"sqlite_path": "x.sqlite"}}, port=8000)   # ray.init() + serve.run, returns base URL

Used by `shopsense serve`, the demo, the benchmark and the end-to-end tests, so all of
them run the graph exactly as `serve deploy serve/config.yaml` would.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from shopsense.config import Settings

CONFIG = Path(__file__).with_name("config.yaml")


def app_args(settings: dict | None = None, replicas: dict[str, int] | None = None,
             config_path: Path = CONFIG) -> dict:
    """Builder args from config.yaml, with settings overrides merged and fixed replica counts where given."""
    application = yaml.safe_load(config_path.read_text())["applications"][0]
    args = dict(application.get("args") or {})
    merged = dict(args.get("settings") or {})
    for section, values in (settings or {}).items():
        merged[section] = {**merged.get(section, {}), **values} if isinstance(values, dict) else values
    # Replicas may run in another working directory: pin relative paths to this one.
    resolved = Settings.load(overrides=merged)
    merged["artifacts_dir"] = str(resolved.artifacts.resolve())
    merged.setdefault("store", {})["sqlite_path"] = str(Path(resolved.store.sqlite_path).resolve())
    args["settings"] = merged
    options = {d.pop("name"): d for d in application.get("deployments", [])}
    for name, count in (replicas or {}).items():
        options[name].pop("autoscaling_config", None)
        options[name]["num_replicas"] = count
    args["deployment_options"] = options
    return args


def start(settings: dict | None = None, port: int = 8000, replicas: dict[str, int] | None = None,
          num_cpus: int | None = None) -> str:
    import ray
    from ray import serve

    from serve.app import build_app

    if not ray.is_initialized():
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app(app_args(settings, replicas)), name="shopsense", route_prefix="/")
    return f"http://127.0.0.1:{port}"


def stop() -> None:
    import ray
    from ray import serve

    serve.shutdown()
    ray.shutdown()
