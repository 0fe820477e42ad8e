"""kvmnetlab's collectors: the plugin interface (``collectors.base``) and the plugins.

The plugins register themselves with ``collectors.base.register`` when imported; this
package imports the built-in ones, so ``collectors.base.known()`` and ``get()`` see them
whichever module of the package is imported first. The registry imports no plugin: the
plugins import it.
"""

from collectors import builtin, throughput  # noqa: F401  (each registers its collectors)
