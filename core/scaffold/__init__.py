"""Writing projects: `relman demo` (the example repository in demo_template/) and `relman init`
(relman.toml for an existing repository).

Imports core.config and core.host.
"""
