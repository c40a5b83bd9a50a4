// SPDX-License-Identifier: GPL-2.0
/* Stand-in for the ENA driver (centos6-ami tests only): a module named ena
 * whose load prints a marker line that comes from the common/ena_com objects,
 * so a test can tell it from the in-tree ena and see both directories built. */
#include <linux/init.h>
#include <linux/module.h>
#include "ena_netdev.h"

static int __init ena_standin_init(void)
{
	pr_info("%s %s\n", ena_com_standin_marker(), ena_eth_com_standin_word());
	return 0;
}

static void __exit ena_standin_exit(void)
{
	pr_info("centos6-ami test ena unloaded\n");
}

module_init(ena_standin_init);
module_exit(ena_standin_exit);
MODULE_LICENSE("GPL");
MODULE_VERSION(DRV_MODULE_GENERATION);
MODULE_DESCRIPTION("centos6-ami stand-in for the Amazon ENA driver (tests)");
