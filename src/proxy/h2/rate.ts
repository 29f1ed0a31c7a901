/** The relay's flood limits count with the project's one token bucket. */
export { TokenBucket } from '../../token-bucket.js';
