from p2c_cli.main import app

app()
