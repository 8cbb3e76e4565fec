"""conda-guard's conda plugin: `conda sign`, `conda guard`, and an install
gate that refuses packages conda-guard does not verify (see plugin.py for the
hooks and core.py for the gate protocol). Importing this package imports no
conda module; conda loads the hooks from the entry point
``conda_guard_plugin.plugin``."""

__version__ = "0.1.0"
