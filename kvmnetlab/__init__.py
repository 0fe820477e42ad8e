"""kvmnetlab's core on the controller: the result store and its format, the lab lock,
campaign validation, the scenario resolver and the lab's capabilities and links.

The collector plugins and their parsers live in ``collectors/``; ``analysis/`` and
``nightly/`` read and drive what is here.
"""
