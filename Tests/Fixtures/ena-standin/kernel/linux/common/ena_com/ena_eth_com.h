/* SPDX-License-Identifier: GPL-2.0 */
/* Stand-in for amzn-drivers' common/ena_com/ena_eth_com.h (centos6-ami tests only). */
#ifndef ENA_ETH_COM_H
#define ENA_ETH_COM_H

#include "ena_com.h"

const char *ena_eth_com_standin_word(void);

#endif /* ENA_ETH_COM_H */
