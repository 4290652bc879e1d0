/* report_charts.h - turn report data into the report's SVG charts
 * (internal to verify/report_html.c). Each writes one <svg> (or nothing when
 * the data lacks what it needs) and returns 1 when it wrote a chart. */
#ifndef QP_VERIFY_REPORT_CHARTS_H
#define QP_VERIFY_REPORT_CHARTS_H

#include "verify/report_data.h"
#include "verify/strbuf.h"

/* Relative RMSE (weighted = 0) or importance-weighted relative RMSE
 * (weighted = 1) by layer x tensor kind. Kinds whose every tensor is exact
 * are left out and listed in `exact` (comma-separated). */
int qp_rc_error_heatmap(qp_sb *b, const qp_report_data *r, int weighted, char *exact, size_t exact_size);
/* Bits per weight of each layer, plus the large tensors outside layers. */
int qp_rc_bpw_by_layer(qp_sb *b, const qp_report_data *r);
/* Tokens routed to each expert of each layer, under-covered ones marked. */
int qp_rc_routing(qp_sb *b, const qp_report_data *r);
/* Bytes by tensor kind with the types used. */
int qp_rc_size_by_kind(qp_sb *b, const qp_report_data *r);

#endif
