/* SPDX-License-Identifier: GPL-2.0 */
/* Stand-in for amzn-drivers' ena_netdev.h (centos6-ami tests only): like the
 * real one it includes ena_com.h from ../common/ena_com (found through the
 * Makefile's -I) and builds the module version as "<major>.<minor>.<sub>g". */
#ifndef ENA_NETDEV_H
#define ENA_NETDEV_H

#include <linux/stringify.h>
#include "ena_com.h"
#include "ena_eth_com.h"

#define DRV_MODULE_GEN_MAJOR	0
#define DRV_MODULE_GEN_MINOR	0
#define DRV_MODULE_GEN_SUBMINOR 1

#define DRV_MODULE_NAME		"ena"
#define DRV_MODULE_GENERATION \
	__stringify(DRV_MODULE_GEN_MAJOR) "."	\
	__stringify(DRV_MODULE_GEN_MINOR) "."	\
	__stringify(DRV_MODULE_GEN_SUBMINOR) "g"

#endif /* ENA_NETDEV_H */
