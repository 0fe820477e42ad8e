"""One parser per tool: ``parse(path)`` turns a raw capture into plain Python records.

Each parser is a pure function of the file. Anything malformed or cut short raises
:class:`kvmnetlab.errors.ParseError` naming the file and, where one is to blame, the
1-based line; nothing is ever read as zero by default. Every parser reads through
``collectors.parsers._text``: a raw file that is there but cannot be read (a
directory, a FIFO, a dangling link) raises its subclass
:class:`kvmnetlab.errors.UnreadableError` naming the file, never an OSError. Numbers
carry their unit in their field name (``rtt_us``, ``*_bytes``, ``*_ticks``, ``*_pps``).
Every number is read through ``_text.to_int`` or ``_text.to_float``: range-checked where
it is read, finite, a ParseError naming file, line and field otherwise; each parser
also checks the tool's own summary against its per-line data (docs/result-store.md,
"Parsing"). tests/collectors/test_parsers_fuzz.py mutates the real fixtures to hold
them to it.

| module | raw file |
|---|---|
| ``ping`` | ``ping -D -O -n -c N -i S -s B ADDR`` stdout (iputils 20221126, IPv4 or IPv6) |
| ``fping`` | ``fping -C N`` stderr summary (fping 5.1) |
| ``sockperf`` | ``sockperf ping-pong [--full-rtt]`` stdout (sockperf 3.7) |
| ``trafgen`` | netsniff-ng ``trafgen`` stdout (0.6.8) |
| ``pfsend``, ``pfcount`` | PF_RING 8.x examples' stdout / stderr (pfcount stopped by SIGINT) |
| ``proc_stat`` | ``/proc/stat`` |
| ``proc_interrupts`` | ``/proc/interrupts`` |
| ``proc_net_dev`` | ``/proc/net/dev`` |
| ``sys_net_statistics`` | ``grep -r . /sys/class/net/<if>/statistics/`` |
| ``proc_task_stat`` | ``for f in /proc/PID/task/*/stat; do cat $f; done`` |
| ``ethtool_info``, ``ethtool_features``, ``ethtool_stats`` | ``ethtool -i``, ``-k``, ``-S`` (6.1) |

Fixtures, and exactly how each was captured: ``tests/fixtures/<tool>/CAPTURE.md``.
"""
