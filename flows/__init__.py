"""Orchestration: Prefect flows and tasks, the step runner, the workspace and the CLI.

The only room that knows Prefect. Importing ``flows`` itself imports nothing heavy, so
``calops`` commands that do not run flows start quickly.
"""
