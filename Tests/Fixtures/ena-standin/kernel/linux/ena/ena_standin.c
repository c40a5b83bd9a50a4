// SPDX-License-Identifier: GPL-2.0
/* Stand-in for the ENA driver (centos6-ami tests only): a module named ena
 * whose load prints a marker line, so a test can tell it from the in-tree ena. */
#include <linux/init.h>
#include <linux/module.h>

static int __init ena_standin_init(void)
{
	pr_info("centos6-ami test ena loaded\n");
	return 0;
}

static void __exit ena_standin_exit(void)
{
	pr_info("centos6-ami test ena unloaded\n");
}

module_init(ena_standin_init);
module_exit(ena_standin_exit);
MODULE_LICENSE("GPL");
MODULE_VERSION("0.0.1");
MODULE_DESCRIPTION("centos6-ami stand-in for the Amazon ENA driver (tests)");
