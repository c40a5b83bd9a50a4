// SPDX-License-Identifier: GPL-2.0
/* Stand-in for amzn-drivers' common/ena_com/ena_com.c (centos6-ami tests only):
 * compiled by kernel/linux/ena/Makefile from ../common/ena_com/. */
#include "ena_com.h"

const char *ena_com_standin_marker(void)
{
	return "centos6-ami test ena";
}
