"""Environment presets: the layer between built-in defaults and a stack's own config.

Only what differs from the defaults in `config.model` is here. Choices and their reasons:
- dev: one Docker host, short retention (days), every trace kept (the seed: 100% sampling in dev),
  and a `null` receiver so a fresh dev stack works with no setup: alerts show in Alertmanager's UI
  and are not sent anywhere.
- prod: Kubernetes, the seed's 30 days of metrics; logs 30d (incident reviews reach back a month),
  traces and profiles 14d (high volume, mostly used for recent debugging); 5% of ordinary traces
  (the seed's ratio) while errors and slow traces are always kept; data volumes protected; the
  critical and warning routes must be set by the stack (there is no safe default pager).
"""

from __future__ import annotations

PRESETS: dict[str, dict] = {
    "dev": {
        "target": "docker",
        "retention": {"metrics": "7d", "logs": "3d", "traces": "2d", "profiles": "3d"},
        "sampling": {"traces": 1.0},
        "alerting": {
            "receivers": [{"name": "null"}],
            "routes": {"critical": "null", "warning": "null", "default": "null"},
        },
        "ingest": {
            "metricsSamplesPerSecond": 2000,
            "logGbPerDay": 0.5,
            "spansPerSecond": 50,
            "profileMbPerDay": 100,
        },
        "protectData": False,
    },
    "prod": {
        "target": "kubernetes",
        "retention": {"metrics": "30d", "logs": "30d", "traces": "14d", "profiles": "14d"},
        "sampling": {"traces": 0.05},
        "ingest": {
            "metricsSamplesPerSecond": 20000,
            "logGbPerDay": 20,
            "spansPerSecond": 500,
            "profileMbPerDay": 1000,
        },
        "components": {
            "prometheus": {"resources": {"requests": {"cpu": "500m", "memory": "2Gi"},
                                         "limits": {"cpu": "2", "memory": "4Gi"}}},
            "loki": {"resources": {"requests": {"cpu": "500m", "memory": "1Gi"},
                                   "limits": {"cpu": "2", "memory": "2Gi"}}},
            "tempo": {"resources": {"requests": {"cpu": "500m", "memory": "1Gi"},
                                    "limits": {"cpu": "2", "memory": "2Gi"}}},
            "mimir": {"resources": {"requests": {"cpu": "500m", "memory": "2Gi"},
                                    "limits": {"cpu": "2", "memory": "4Gi"}}},
            "collector": {"resources": {"requests": {"cpu": "250m", "memory": "256Mi"},
                                        "limits": {"cpu": "1", "memory": "1Gi"}}},
        },
        "protectData": True,
    },
}
