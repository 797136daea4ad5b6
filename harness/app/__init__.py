"""The application: inventory of implementations, runner, target resolution, isolation, CLI and
docs generation. Only the application imports every other lossguard package."""
