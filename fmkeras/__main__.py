from fmkeras.cli.main import run

run()
