// HTML training/evaluation reports (`tuneforge report`).
export { buildReportHtml, buildReportModel, writeReport } from "./report.js";
export { parseMetricsJsonl, readMetricsJsonl } from "./metricsLog.js";
export {
  METRICS_FILE,
  RESULTS_SUFFIX,
  RUN_INFO_FILE,
  defaultResultsDir,
  findRunDirs,
  loadResultsDir,
  loadResultsFile,
  loadRun,
  resultsBelongToRun,
} from "./inputs.js";
export { escapeHtml, jsonForScript } from "./html.js";
export { CONTENT_SECURITY_POLICY, formatNumber } from "./render.js";
export type {
  ChartDataset,
  ChartPoint,
  ChartSpec,
  ReportModel,
  ResultsSummary,
  RunSummary,
} from "./model.js";
export type * from "./types.js";
