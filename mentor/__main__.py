from mentor.cli import main

main()
