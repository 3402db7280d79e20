from p2c_cli.entry import main

main()
