from reservation.cli import main

main()
