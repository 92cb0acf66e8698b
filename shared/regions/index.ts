/** Data residency: the region table from configuration, and the guard every personal-data access goes through. */
export {
  DEFAULT_REGION_ID, findRegion, REGION_ID, REGION_VARIABLES, regionsConfigOf, regionsEnv, regionVariable,
  type Region, type RegionFallbacks, type RegionHost, type RegionsConfig, type RegionVariableSuffix,
} from './config.ts';
export { assertSameRegion, logRefusal, regionOf, ResidencyError, type RegionClaims, type ResidencyReason } from './residency.ts';
export { createRegionPorts, singleRegionPorts, type EdgeRegionStores, type RegionPorts, type RegionStores } from './ports.ts';
