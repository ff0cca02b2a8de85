from ragidx.cli import main

main()
