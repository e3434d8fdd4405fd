"""The web dashboard: pages, a JSON API and Prometheus metrics over the status document
(nasbox.status), served by `nasbox web` under the supervisor while an administrator password
is configured (server.web)."""
