"""Environment presets: the layer between built-in defaults and a stack's own config.

Only what differs from the defaults in `config.model` is here. Choices and their reasons:
- dev: one Docker host, short retention (days), every trace kept (the seed: 100% sampling in dev),
  and a `null` receiver so a fresh dev stack works with no setup: alerts show in Alertmanager's UI
  and are not sent anywhere.
- prod: Kubernetes, the seed's 30 days of metrics; logs 30d (incident reviews reach back a month),
  traces and profiles 14d (high volume, mostly used for recent debugging); 5% of ordinary traces
  (the seed's ratio) while errors and slow traces are always kept; data volumes protected; the
  critical and warning routes must be set by the stack (there is no safe default pager);
  high availability on (alerting and ingestion survive a lost node).
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
        # Sized so the whole dev stack fits a 4 GiB laptop: limits sum to about 3 GiB (the rest
        # is for the OS and Docker), requests to about 1.3 GiB (`make bench` prints the table).
        # Prometheus, collector and Mimir memory are derived from the ingest above (components/sizing.py).
        "components": {
            "loki": {"resources": {"requests": {"memory": "192Mi"}, "limits": {"memory": "384Mi"}}},
            "tempo": {"resources": {"requests": {"memory": "192Mi"}, "limits": {"memory": "384Mi"}}},
            "pyroscope": {"resources": {"limits": {"memory": "256Mi"}}},
            "grafana": {"resources": {"limits": {"memory": "320Mi"}}},
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
        # Prometheus, collector and Mimir memory are derived from the ingest above (components/sizing.py);
        # their CPU and the other tools' sizes are set here.
        "components": {
            "prometheus": {"resources": {"requests": {"cpu": "500m"}, "limits": {"cpu": "2"}}},
            "loki": {"resources": {"requests": {"cpu": "500m", "memory": "1Gi"},
                                   "limits": {"cpu": "2", "memory": "2Gi"}}},
            "tempo": {"resources": {"requests": {"cpu": "500m", "memory": "1Gi"},
                                    "limits": {"cpu": "2", "memory": "2Gi"}}},
            "mimir": {"resources": {"requests": {"cpu": "500m"}, "limits": {"cpu": "2"}}},
            "collector": {"resources": {"requests": {"cpu": "250m"}, "limits": {"cpu": "1"}}},
        },
        "protectData": True,
        # Alertmanager x3, Prometheus x2, a two-tier collector: a lost node costs no alert and no
        # span (README "High availability").
        "highAvailability": True,
    },
}
