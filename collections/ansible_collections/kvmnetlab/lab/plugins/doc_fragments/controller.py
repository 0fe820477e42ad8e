# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every controller-side action plugin of kvmnetlab.lab shares in its documentation.

A module stub of plugins/modules/ that documents such an action extends
``kvmnetlab.lab.controller`` (the note and the attributes), and
``kvmnetlab.lab.controller.campaign_dir`` when it works on a campaign folder. The options
of a fragment are part of the action's argument spec, as its own are
(plugin_utils/argspec.py).
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options: {}
notes:
  - An action plugin that runs on the controller only and never runs anything on a managed
    host; it calls the C(kvmnetlab) and C(collectors) Python packages that C(bootstrap.sh)
    installs into the controller's environment.
  - This module file holds only its documentation. The options documented here are also the
    argument spec its task arguments are validated against (Ansible's
    C(ArgumentSpecValidator)), so the documentation and the validation cannot drift apart.
attributes:
  action:
    description: Runs as an action plugin on the controller.
    support: full
  check_mode:
    description: Can run in check mode and return a changed status prediction without
      changing anything.
    support: full
  diff_mode:
    description: Returns details of what changed (or would change, in check mode) in diff mode.
    support: none
"""

    CAMPAIGN_DIR = r"""
options:
  campaign_dir:
    description: The campaign folder, C(<results_dir>/<campaign-id>/), holding its manifest.
    type: path
    required: true
"""
