/* The RFC 2544 / RFC 9004 search for one frame size, as a pure module: it
 * decides which trials to run and what they mean; a callback runs them.
 * Unit tests drive it against a simulated device, vswitch-pktgen against
 * real ports and agents.
 *
 * Order of the trials, each kept in the result:
 * 1. ceiling: one unpaced trial; the rate the sending side reached. If that
 *    trial lost nothing, the generator, not the device, is the limit
 *    (generator_limited), and the NDR is the ceiling.
 * 2. NDR (0 loss) and PDR (<= pdr_loss_pct) by binary search between 0 and
 *    the ceiling, each until the passing and failing rates are within the
 *    resolution; the answer is the highest passing rate (0 if none).
 * 3. one verification trial at the NDR, wrapped in the hook's begin/end
 *    (the switch's cycle counters are read around it).
 * 4. latency at 10, 50 and 90 % of the NDR.
 * 5. frame loss rate at 100, 90, ... 10 % of the ceiling, stopping after
 *    two successive lossless steps (RFC 2544 26.3).
 * 6. back-to-back (RFC 9004): per repetition, a binary search for the
 *    longest unpaced burst with no loss; their average, and the implied
 *    buffer time (average burst / ceiling) * (ceiling - NDR) / NDR.
 *
 * A trial that sent frames and received none at all is an error (-EIO:
 * the agent or the path is gone), not a 0 rate. A callback error stops the
 * search with that error. Not thread-safe; one search per object.
 */
#ifndef PKTGEN_SEARCH_H
#define PKTGEN_SEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pktgen_trial_kind {
    PKTGEN_TRIAL_CEILING,
    PKTGEN_TRIAL_NDR,
    PKTGEN_TRIAL_PDR,
    PKTGEN_TRIAL_VERIFY,
    PKTGEN_TRIAL_LATENCY,
    PKTGEN_TRIAL_LOSS_STEP,
    PKTGEN_TRIAL_B2B,
    PKTGEN_TRIAL_N_KINDS,
};

extern const char *const pktgen_trial_kind_names[PKTGEN_TRIAL_N_KINDS];

/* What to run: `rate_pps` 0 is unpaced; `count` 0 means for `seconds`. */
struct pktgen_trial_req {
    enum pktgen_trial_kind kind;
    double rate_pps;
    double seconds;
    uint64_t count;
};

/* Percentile indexes of pktgen_trial_res.lat_ns. */
enum { PKTGEN_P50, PKTGEN_P90, PKTGEN_P99, PKTGEN_P99_9, PKTGEN_PMAX, PKTGEN_N_PCT };

/* What a trial measured. tx: frames the generator sent (the port took);
 * rx: distinct frames of the trial's stream the sink received. */
struct pktgen_trial_res {
    uint64_t tx, rx;
    uint64_t reordered, duplicates;
    double tx_pps;   /* the rate the generator achieved */
    double seconds;  /* the generator's sending time */
    uint64_t lat_ns[PKTGEN_N_PCT]; /* 0s when nothing was timed */
};

struct pktgen_trial {
    struct pktgen_trial_req req;
    struct pktgen_trial_res res;
    double loss_pct; /* 100 * (tx - rx) / tx, 0 when rx >= tx */
};

/* Runs one trial; 0 with *res filled, or -errno (the search stops). */
typedef int (*pktgen_trial_fn)(void *arg, const struct pktgen_trial_req *req,
                               struct pktgen_trial_res *res);
/* The hook around the verification trial: begin true, then false. */
typedef void (*pktgen_verify_hook_fn)(void *arg, bool begin);
/* Called after each trial: the trial and an estimate of the seconds left. */
typedef void (*pktgen_progress_fn)(void *arg, const struct pktgen_trial *t, double left_s);

struct pktgen_search_cfg {
    double trial_s;        /* > 0 */
    double resolution_pct; /* of the ceiling, > 0 and <= 50 */
    double resolution_pps; /* if > 0, used instead of resolution_pct */
    double pdr_loss_pct;   /* >= 0 and < 100 */
    unsigned b2b_trials;   /* 0: no back-to-back */
    bool no_loss_steps;    /* leave the frame loss steps out (a quick run) */
    uint64_t b2b_max;      /* the longest burst tried; 0: ceiling * trial_s */
    pktgen_trial_fn trial;
    pktgen_verify_hook_fn hook;     /* may be NULL */
    pktgen_progress_fn progress;    /* may be NULL */
    void *arg;
};

#define PKTGEN_LOSS_STEPS 10u
#define PKTGEN_LAT_POINTS 3u

struct pktgen_loss_step {
    unsigned pct;         /* of the ceiling */
    double offered_pps;   /* asked for */
    double loss_pct;
};

struct pktgen_search_result {
    double ceiling_pps;
    bool generator_limited;
    double ndr_pps, pdr_pps;
    bool ndr_verified;     /* the verification trial at the NDR lost nothing */
    double resolution_pps;
    /* Latency at 10, 50, 90 % of the NDR (valid when have_latency). */
    bool have_latency;
    unsigned lat_pct[PKTGEN_LAT_POINTS];
    uint64_t lat_ns[PKTGEN_LAT_POINTS][PKTGEN_N_PCT];
    struct pktgen_loss_step loss_steps[PKTGEN_LOSS_STEPS];
    unsigned n_loss_steps;
    /* Back-to-back: the average of b2b_runs searches, each the longest
     * lossless burst; b2b_capped when a burst of b2b_max lost nothing (the
     * device's buffer is not the limit: no buffer time). */
    unsigned b2b_runs;
    double b2b_frames;
    bool b2b_capped;
    double b2b_buffer_us;  /* < 0 when not measurable */
    struct pktgen_trial *trials;
    size_t n_trials;
};

/* Checks *cfg; 0 or -EINVAL. */
int pktgen_search_cfg_check(const struct pktgen_search_cfg *cfg);

/* Runs the whole search; 0, -EINVAL (cfg), -EIO (a trial received
 * nothing), -ENOMEM, or the callback's error. *out is filled as far as the
 * search got (its trials too) and must be released with
 * pktgen_search_result_free whatever the result. */
int pktgen_search_run(const struct pktgen_search_cfg *cfg, struct pktgen_search_result *out);

void pktgen_search_result_free(struct pktgen_search_result *r);

/* The loss of a trial in %, as the search judges it. */
double pktgen_trial_loss_pct(const struct pktgen_trial_res *res);

#endif
