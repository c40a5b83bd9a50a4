// SPDX-License-Identifier: GPL-2.0
/* Stand-in for amzn-drivers' common/ena_com/ena_eth_com.c (centos6-ami tests only). */
#include "ena_eth_com.h"

const char *ena_eth_com_standin_word(void)
{
	return "loaded";
}
