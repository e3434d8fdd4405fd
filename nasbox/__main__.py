from nasbox.relay import main

raise SystemExit(main())
