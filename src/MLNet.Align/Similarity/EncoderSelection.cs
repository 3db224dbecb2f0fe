using System.Text.Json.Serialization;
using MLNet.Align.Embeddings;
using static TorchSharp.torch;

namespace MLNet.Align.Similarity;

/// <summary>Settings of <see cref="EncoderSelection.Rank"/>.</summary>
public sealed record EncoderSelectionOptions
{
    /// <summary>The metric that orders the candidates (default linear CKA, the released selection script's choice).</summary>
    public PairMetric Metric { get; init; } = PairMetric.LinearCka;
    /// <summary>RBF bandwidth σ as a fraction of the median pairwise distance (per side; default 1.0, the
    /// <c>alignment/utils.py</c> choice). Must be positive.</summary>
    public double SigmaFraction { get; init; } = 1.0;
    /// <summary>Use the unbiased HSIC estimator (Song et al. 2012) for both linear and RBF CKA instead of the biased
    /// trace formula (needs n &gt;= 4).</summary>
    public bool UnbiasedHsic { get; init; }
    /// <summary>k of mutual k-NN (clamped to n − 1; default 10).</summary>
    public int KnnK { get; init; } = 10;
    /// <summary>Bootstrap resamples of the probe items for the confidence intervals (0 = none; default 200).</summary>
    public int Bootstrap { get; init; } = 200;
    /// <summary>Confidence level of the percentile intervals (default 0.95).</summary>
    public double ConfidenceLevel { get; init; } = 0.95;
    /// <summary>Seed of the bootstrap resamples and of the shuffled-pairs permutation (System.Random, deterministic).</summary>
    public int Seed { get; init; }
    /// <summary>Also score every pair with the text rows shuffled (pairing destroyed): the chance level of each metric.</summary>
    public bool ShuffledControl { get; init; } = true;

    /// <summary>Largest <see cref="Bootstrap"/> accepted: 100,000 resamples (intervals stop moving long before; the
    /// usual 200-10,000 fit easily). Each resample holds n item indices and is scored for every candidate pair.</summary>
    public const int MaxBootstrap = 100_000;

    /// <summary>Checks every value's range (before any encoding, so a bad value fails at once).</summary>
    /// <exception cref="ArgumentException">A value is out of range; the message names it, the range and the value.</exception>
    public void Validate()
    {
        if (!(SigmaFraction > 0) || !double.IsFinite(SigmaFraction))
            throw new ArgumentException($"The RBF sigma fraction (--sigma) must be positive and finite, got {SigmaFraction}.");
        if (Bootstrap < 0 || Bootstrap > MaxBootstrap)
            throw new ArgumentException($"Bootstrap resamples (--bootstrap) must be in [0, {MaxBootstrap}], got {Bootstrap}.");
        if (!(ConfidenceLevel > 0 && ConfidenceLevel < 1))
            throw new ArgumentException($"The confidence level must be in (0, 1), got {ConfidenceLevel}.");
        if (KnnK < 1)
            throw new ArgumentException($"k of mutual k-NN (--knn) must be at least 1, got {KnnK}.");
    }
}

/// <summary>A metric's value on the probe set, its bias-corrected bootstrap interval and its shuffled-pairs control.</summary>
/// <param name="Value">Point estimate on all n items.</param>
/// <param name="Low">Lower interval bound (null without bootstrap).</param>
/// <param name="High">Upper interval bound (null without bootstrap).</param>
/// <param name="Shuffled">The same metric with the text rows permuted (null without the control).</param>
/// <param name="BootstrapBias">Mean of the resampled values minus <paramref name="Value"/> (null without bootstrap); the
/// interval is the percentile interval shifted back by it.</param>
public sealed record MetricEstimate(
    [property: JsonPropertyName("value")] double Value,
    [property: JsonPropertyName("low")] double? Low,
    [property: JsonPropertyName("high")] double? High,
    [property: JsonPropertyName("shuffled")] double? Shuffled,
    [property: JsonPropertyName("bootstrap_bias")] double? BootstrapBias = null);

/// <summary>One (image candidate, text candidate) pair's stage-1 scores.</summary>
public sealed record CandidatePairScore
{
    /// <summary>1 = best by the report's metric.</summary>
    [JsonPropertyName("rank")] public int Rank { get; init; }
    /// <summary>Image candidate (model or layer) name.</summary>
    [JsonPropertyName("image")] public required string Image { get; init; }
    /// <summary>Text candidate name.</summary>
    [JsonPropertyName("text")] public required string Text { get; init; }
    /// <summary>Width of the image embedding.</summary>
    [JsonPropertyName("image_dim")] public int ImageDimension { get; init; }
    /// <summary>Width of the text embedding.</summary>
    [JsonPropertyName("text_dim")] public int TextDimension { get; init; }
    /// <summary>Linear CKA (biased or unbiased HSIC per the options), in [0, 1].</summary>
    [JsonPropertyName("linear_cka")] public required MetricEstimate LinearCka { get; init; }
    /// <summary>RBF-kernel CKA, in [0, 1].</summary>
    [JsonPropertyName("rbf_cka")] public required MetricEstimate RbfCka { get; init; }
    /// <summary>Mutual k-NN alignment, in [0, 1] (chance ≈ k/(n−1)).</summary>
    [JsonPropertyName("mutual_knn")] public required MetricEstimate MutualKnn { get; init; }

    /// <summary>The estimate of <paramref name="metric"/> (<see cref="PairMetric.UnbiasedLinearCka"/> reads
    /// <see cref="LinearCka"/>: the estimator is chosen by <see cref="EncoderSelectionOptions.UnbiasedHsic"/>).</summary>
    public MetricEstimate Get(PairMetric metric) => metric switch
    {
        PairMetric.KernelCka => RbfCka,
        PairMetric.MutualKnn => MutualKnn,
        _ => LinearCka,
    };
}

/// <summary>The stage-1 ranking: every candidate pair scored on one probe set, best first. Holds no timings, so equal
/// inputs give byte-equal JSON (sharded and one-process runs compare by hash).</summary>
public sealed record EncoderSelectionReport
{
    /// <summary>Probe items n (images; text = the mean of each image's caption embeddings).</summary>
    [JsonPropertyName("n")] public int N { get; init; }
    /// <summary>Ordering metric.</summary>
    [JsonPropertyName("metric")] public PairMetric Metric { get; init; }
    /// <summary>RBF bandwidth as a fraction of the median distance.</summary>
    [JsonPropertyName("sigma_fraction")] public double SigmaFraction { get; init; }
    /// <summary>Whether HSIC is the unbiased estimator.</summary>
    [JsonPropertyName("unbiased_hsic")] public bool UnbiasedHsic { get; init; }
    /// <summary>k of mutual k-NN.</summary>
    [JsonPropertyName("knn_k")] public int KnnK { get; init; }
    /// <summary>Bootstrap resamples (0 = no intervals).</summary>
    [JsonPropertyName("bootstrap")] public int Bootstrap { get; init; }
    /// <summary>Interval confidence level.</summary>
    [JsonPropertyName("confidence")] public double ConfidenceLevel { get; init; }
    /// <summary>Seed of resamples and permutation.</summary>
    [JsonPropertyName("seed")] public int Seed { get; init; }
    /// <summary>Candidates, best first.</summary>
    [JsonPropertyName("pairs")] public required CandidatePairScore[] Pairs { get; init; }

    /// <summary>The best pair.</summary>
    [JsonIgnore] public CandidatePairScore Best => Pairs[0];

    /// <summary>[image candidates, text candidates] grid of a metric's point estimate (NaN where absent), for heatmaps;
    /// candidates in first-appearance order of the input dictionaries.</summary>
    public (string[] Images, string[] Texts, double[,] Values) Grid(PairMetric? metric = null)
    {
        var m = metric ?? Metric;
        var images = ImageOrder.Length > 0 ? ImageOrder : Pairs.Select(p => p.Image).Distinct().ToArray();
        var texts = TextOrder.Length > 0 ? TextOrder : Pairs.Select(p => p.Text).Distinct().ToArray();
        var values = new double[images.Length, texts.Length];
        for (int i = 0; i < images.Length; i++) for (int j = 0; j < texts.Length; j++) values[i, j] = double.NaN;
        foreach (var p in Pairs) values[Array.IndexOf(images, p.Image), Array.IndexOf(texts, p.Text)] = p.Get(m).Value;
        return (images, texts, values);
    }

    /// <summary>Image candidates in input order.</summary>
    [JsonPropertyName("image_candidates")] public string[] ImageOrder { get; init; } = [];
    /// <summary>Text candidates in input order.</summary>
    [JsonPropertyName("text_candidates")] public string[] TextOrder { get; init; } = [];
}

/// <summary>
/// Stage 1 of Freeze-Align (paper section 1) as a product feature: ranks every (image candidate, text candidate) pair
/// by linear CKA, RBF CKA and mutual k-NN on one probe set, the paper's way (row i of every matrix is probe image i;
/// image = its pooled embedding or mean of tokens; text = the mean of the image's caption embeddings, see
/// <see cref="EncoderPairRanker.AverageCaptionsPerImage"/>), with bootstrap confidence intervals (items resampled with
/// replacement, seeded, the same resamples for every pair, so pairs compare on equal draws) and a shuffled-pairs
/// control. CKA intervals recompute the whole estimate (RBF bandwidth included) on each resample. A with-replacement
/// resample repeats items, and repeated items are identical in both spaces, which inflates CKA: measured on 159 COCO
/// images, every resample of linear CKA 0.693 lay above it (percentiles [0.722, 0.770]). The interval is therefore the
/// percentile interval shifted back by the bootstrap bias (mean of resamples − estimate), reported beside it. The
/// mutual k-NN interval resamples the per-item neighbour overlaps of the full set (neighbours are not recomputed, so no
/// such bias). Computed in float64 (TorchSharp); O(n²) memory per pair.
/// </summary>
public static class EncoderSelection
{
    /// <summary>Scores and ranks all pairs.</summary>
    /// <param name="images">Image candidate name -> [n, d_i] probe embeddings.</param>
    /// <param name="texts">Text candidate name -> [n, d_t] probe embeddings, same row order.</param>
    /// <param name="options">Settings; defaults when null.</param>
    /// <param name="progress">Receives the number of pairs done.</param>
    /// <exception cref="ArgumentException">No candidates, a row-count mismatch (the message names the candidate), fewer
    /// than 4 items, a non-positive σ fraction, or a constant representation.</exception>
    public static EncoderSelectionReport Rank(IReadOnlyDictionary<string, EmbeddingMatrix> images, IReadOnlyDictionary<string, EmbeddingMatrix> texts,
        EncoderSelectionOptions? options = null, IProgress<int>? progress = null)
    {
        options ??= new EncoderSelectionOptions();
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(texts);
        if (images.Count == 0 || texts.Count == 0)
            throw new ArgumentException($"Need at least one image and one text candidate, got {images.Count} and {texts.Count}.");
        int n = images.First().Value.Rows;
        foreach (var (name, m) in images.Concat(texts))
            if (m.Rows != n)
                throw new ArgumentException($"Candidate '{name}' has {m.Rows} probe rows, expected {n} (every candidate must embed the same probe items).");
        if (n < 4) throw new ArgumentException($"The probe set needs at least 4 items, got {n}.");
        options.Validate();
        // The resample table is Bootstrap x n indices: bound it by memory (2^28 entries = 2 GiB), with the bound in the message.
        const long maxEntries = 1L << 28;
        if ((long)options.Bootstrap * n > maxEntries)
            throw new ArgumentException($"--bootstrap {options.Bootstrap} x {n} probe items = {(long)options.Bootstrap * n} resampled indices, over the memory bound of {maxEntries} (2 GiB); use at most {maxEntries / n} resamples.");
        int k = Math.Clamp(options.KnnK, 1, n - 1);

        var rng = new Random(options.Seed);
        var resamples = new long[options.Bootstrap][];
        for (int b = 0; b < resamples.Length; b++)
        {
            resamples[b] = new long[n];
            for (int i = 0; i < n; i++) resamples[b][i] = rng.Next(n);
        }
        var permutation = Enumerable.Range(0, n).ToArray();
        new Random(options.Seed ^ 0x5F3759DF).Shuffle(permutation);

        var neighbours = new Dictionary<string, int[][]>(StringComparer.Ordinal);
        int[][] Nb(string name, EmbeddingMatrix m) => neighbours.TryGetValue(name, out var v) ? v : neighbours[name] = MLNet.Align.Similarity.MutualKnn.Neighbours(m, k);

        var scores = new List<CandidatePairScore>();
        int done = 0;
        foreach (var (imgName, img) in images)
            foreach (var (txtName, txt) in texts)
            {
                scores.Add(ScorePair(imgName, img, txtName, txt, options, k, resamples, permutation, Nb("i:" + imgName, img), Nb("t:" + txtName, txt)));
                progress?.Report(++done);
            }

        var ordered = scores
            .OrderByDescending(s => s.Get(options.Metric).Value)
            .ThenBy(s => s.Image, StringComparer.Ordinal).ThenBy(s => s.Text, StringComparer.Ordinal)
            .Select((s, i) => s with { Rank = i + 1 })
            .ToArray();
        return new EncoderSelectionReport
        {
            N = n, Metric = options.Metric, SigmaFraction = options.SigmaFraction, UnbiasedHsic = options.UnbiasedHsic, KnnK = k,
            Bootstrap = options.Bootstrap, ConfidenceLevel = options.ConfidenceLevel, Seed = options.Seed, Pairs = ordered,
            ImageOrder = images.Keys.ToArray(), TextOrder = texts.Keys.ToArray(),
        };
    }

    private static CandidatePairScore ScorePair(string imgName, EmbeddingMatrix img, string txtName, EmbeddingMatrix txt, EncoderSelectionOptions o,
        int k, long[][] resamples, int[] permutation, int[][] nbImage, int[][] nbText)
    {
        using var scope = NewDisposeScope();
        bool unbiased = o.UnbiasedHsic;
        var x = DenseMath.ToTensor(img);
        var y = DenseMath.ToTensor(txt);
        var kx = x.matmul(x.t());
        var ly = y.matmul(y.t());
        var dx = Cka.PairwiseSquaredDistances(x);
        var dy = Cka.PairwiseSquaredDistances(y);
        double linear = Cka.FromGrams(kx, ly, unbiased);
        double rbf = Cka.FromGrams(Cka.RbfFromSquaredDistances(dx, o.SigmaFraction, imgName), Cka.RbfFromSquaredDistances(dy, o.SigmaFraction, txtName), unbiased);
        var overlap = new double[nbImage.Length];
        for (int i = 0; i < overlap.Length; i++) overlap[i] = nbImage[i].Intersect(nbText[i]).Count() / (double)k;
        double knn = overlap.Average();

        double? linShuf = null, rbfShuf = null, knnShuf = null;
        if (o.ShuffledControl)
        {
            var p = tensor(permutation.Select(v => (long)v).ToArray());
            var lp = ly.index_select(0, p).index_select(1, p);
            var dyp = dy.index_select(0, p).index_select(1, p);
            linShuf = Cka.FromGrams(kx, lp, unbiased);
            rbfShuf = Cka.FromGrams(Cka.RbfFromSquaredDistances(dx, o.SigmaFraction, imgName), Cka.RbfFromSquaredDistances(dyp, o.SigmaFraction, txtName), unbiased);
            knnShuf = MLNet.Align.Similarity.MutualKnn.Score(img, txt.SelectRows(permutation), k);
        }

        double? linLo = null, linHi = null, rbfLo = null, rbfHi = null, knnLo = null, knnHi = null, linBias = null, rbfBias = null, knnBias = null;
        if (resamples.Length > 0)
        {
            var lin = new double[resamples.Length];
            var rb = new double[resamples.Length];
            var kn = new double[resamples.Length];
            for (int b = 0; b < resamples.Length; b++)
            {
                using var inner = NewDisposeScope();
                var idx = tensor(resamples[b]);
                Tensor Sub(Tensor m) => m.index_select(0, idx).index_select(1, idx);
                lin[b] = SafeRatio(() => Cka.FromGrams(Sub(kx), Sub(ly), unbiased));
                rb[b] = SafeRatio(() => Cka.FromGrams(Cka.RbfFromSquaredDistances(Sub(dx), o.SigmaFraction, imgName), Cka.RbfFromSquaredDistances(Sub(dy), o.SigmaFraction, txtName), unbiased));
                double s = 0;
                foreach (long i in resamples[b]) s += overlap[i];
                kn[b] = s / resamples[b].Length;
            }
            (linLo, linHi, linBias) = Interval(lin, linear, o.ConfidenceLevel);
            (rbfLo, rbfHi, rbfBias) = Interval(rb, rbf, o.ConfidenceLevel);
            (knnLo, knnHi, knnBias) = Interval(kn, knn, o.ConfidenceLevel);
        }
        return new CandidatePairScore
        {
            Image = imgName, Text = txtName, ImageDimension = img.Columns, TextDimension = txt.Columns,
            LinearCka = new MetricEstimate(linear, linLo, linHi, linShuf, linBias),
            RbfCka = new MetricEstimate(rbf, rbfLo, rbfHi, rbfShuf, rbfBias),
            MutualKnn = new MetricEstimate(knn, knnLo, knnHi, knnShuf, knnBias),
        };
    }

    /// <summary>A degenerate resample (e.g. every draw the same item) counts as NaN and is left out of the interval.</summary>
    private static double SafeRatio(Func<double> f)
    {
        try { return f(); }
        catch (ArgumentException) { return double.NaN; }
    }

    /// <summary>Bias-corrected percentile interval: the percentiles of the finite resampled values minus their mean's
    /// offset from the estimate.</summary>
    internal static (double? Low, double? High, double? Bias) Interval(double[] resampled, double estimate, double level)
    {
        var (lo, hi) = Percentiles(resampled, level);
        if (lo is null) return (null, null, null);
        double bias = resampled.Where(double.IsFinite).Average() - estimate;
        return (lo - bias, hi - bias, bias);
    }

    /// <summary>Percentile interval of the finite values (linear interpolation between order statistics, numpy's default).</summary>
    internal static (double? Low, double? High) Percentiles(double[] values, double level)
    {
        var v = values.Where(double.IsFinite).Order().ToArray();
        if (v.Length == 0) return (null, null);
        double alpha = (1 - level) / 2;
        return (Quantile(v, alpha), Quantile(v, 1 - alpha));
    }

    private static double Quantile(double[] sorted, double q)
    {
        double pos = q * (sorted.Length - 1);
        int lo = (int)Math.Floor(pos), hi = (int)Math.Ceiling(pos);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
    }
}
