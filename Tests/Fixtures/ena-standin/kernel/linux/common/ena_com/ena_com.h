/* SPDX-License-Identifier: GPL-2.0 */
/* Stand-in for amzn-drivers' common/ena_com/ena_com.h (centos6-ami tests only). */
#ifndef ENA_COM_H
#define ENA_COM_H

const char *ena_com_standin_marker(void);

#endif /* ENA_COM_H */
