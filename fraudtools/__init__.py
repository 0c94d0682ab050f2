"""The tools around the engine, which Chalice does not ship: the command line, the simulator,
detection scoring, reports, the local Kinesis producer and poller, and the rule-author toolkit
(`fraudtools.testing`). They import the engine (`chalicelib`); the engine never imports them."""
