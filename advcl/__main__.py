from advcl.cli import main

main()
