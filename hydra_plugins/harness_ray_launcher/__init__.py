"""The harness's Ray launcher, where Hydra looks for launchers: the `hydra_plugins` package."""
