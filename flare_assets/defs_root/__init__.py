"""The project's defs folder (`[tool.dg.project] defs_module`): one FlareWorkflows component."""
