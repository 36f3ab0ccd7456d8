"""What users run: the `galcolor` command (cli, arguments, commands, cli_reference), the web app (web),
the public Python API (api) and the benchmarks (bench), which drive every other part.

May import anything in the package; nothing in the package imports it but galcolor/__init__.py.
"""
