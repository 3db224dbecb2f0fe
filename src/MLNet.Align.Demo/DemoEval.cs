using Microsoft.ML;
using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;
using MLNet.Align.Evaluation;
using MLNet.Align.Projection;
using MLNet.Align.ZeroShot;
using MLNet.Align.Demo.Data;
using MLNet.Align.Prompts;

namespace MLNet.Align.Demo;

/// <summary>A zero-shot task on frozen features: images with labels, and prompt features per class.</summary>
/// <param name="GlossPrompts">Optional second prompt set: the templates plus WordNet gloss sentences per class (the
/// prompt comparison of the report), with <paramref name="GlossPromptClass"/>; null = not measured.</param>
/// <param name="GlossPromptClass">Class of each gloss prompt.</param>
public sealed record LabelledTask(string Name, EmbeddingMatrix Images, int[] Labels, string[] Classes, EmbeddingMatrix Prompts, int[] PromptClass,
    EmbeddingMatrix? GlossPrompts = null, int[]? GlossPromptClass = null);

/// <summary>Held-out retrieval on frozen features: unique images, captions and each caption's image.</summary>
public sealed record RetrievalTask(EmbeddingMatrix Images, EmbeddingMatrix Captions, int[] CaptionImage);

/// <summary>Scores any <see cref="IAlignedProjector"/> (trained or baseline) on the same cached features.</summary>
/// <param name="sets">Labelled zero-shot sets by key.</param>
/// <param name="proxy">The model-selection proxy tasks (held-out pairs of the training sources only).</param>
/// <param name="heldOut">Held-out retrieval split of the training sources.</param>
/// <param name="trainImages">Training image features (test-time standardisation maps back to their statistics).</param>
/// <param name="photo">Optional photo retrieval check (e.g. COCO photos with sentence captions): measured for every
/// method, never trained on and never used for selection.</param>
public sealed class DemoEval(IReadOnlyDictionary<string, LabelledTask> sets, IReadOnlyList<LabelledTask> proxy, RetrievalTask heldOut, EmbeddingMatrix trainImages,
    RetrievalTask? photo = null)
{
    /// <summary>Retrieval key of the photo check in <see cref="MethodScores.Retrieval"/>.</summary>
    public const string PhotoKey = "photo";

    /// <summary>True when a photo retrieval check is scored.</summary>
    public bool HasPhoto => photo is not null;

    // Test-time standardisation (optional lever): statistics of the evaluated images themselves (unlabelled), mapped
    // back to the training images' statistics so the projector sees its usual input range.
    private readonly Dictionary<string, EmbeddingMatrix> _standardized = sets.ToDictionary(kv => kv.Key,
        kv => FeatureStandardizer.Fit(kv.Value.Images, true, trainImages).Transform(kv.Value.Images));

    public IReadOnlyDictionary<string, LabelledTask> Sets => sets;

    /// <summary>Model-selection proxy: mean zero-shot top-1 over the held-out proxy tasks (Tux Paint folders, emoji
    /// groups), which are neither evaluation set and never trained on.</summary>
    public double Proxy(IAlignedProjector p) => proxy.Average(t => ZeroShot(p, t, t.Images).Top1);

    public ZeroShotResult ZeroShot(IAlignedProjector p, string set, bool standardized = false)
        => ZeroShot(p, sets[set], standardized ? _standardized[set] : sets[set].Images);

    private static ZeroShotResult ZeroShot(IAlignedProjector p, LabelledTask t, EmbeddingMatrix images)
        => ProjectorEvaluation.ZeroShot(p, images, t.Labels, t.Prompts, t.PromptClass, t.Classes);

    /// <summary>Prompt variants of the report: zero-shot top-1 per labelled set with the templates alone and with the
    /// WordNet gloss sentences added, each with the paper's class vectors (mean, not renormalised) and open_clip's
    /// (renormalised). Sets without gloss prompts report the template variants only.</summary>
    public Dictionary<string, Dictionary<string, double>> PromptVariants(IAlignedProjector p)
    {
        var result = new Dictionary<string, Dictionary<string, double>>();
        foreach (var (name, t) in sets)
        {
            var v = new Dictionary<string, double>
            {
                [PromptVariantNames[0]] = ProjectorEvaluation.ZeroShot(p, t.Images, t.Labels, t.Prompts, t.PromptClass, t.Classes).Top1,
                [PromptVariantNames[1]] = ProjectorEvaluation.ZeroShot(p, t.Images, t.Labels, t.Prompts, t.PromptClass, t.Classes, renormalizeClasses: true).Top1,
            };
            if (t.GlossPrompts is not null)
            {
                v[PromptVariantNames[2]] = ProjectorEvaluation.ZeroShot(p, t.Images, t.Labels, t.GlossPrompts, t.GlossPromptClass!, t.Classes).Top1;
                v[PromptVariantNames[3]] = ProjectorEvaluation.ZeroShot(p, t.Images, t.Labels, t.GlossPrompts, t.GlossPromptClass!, t.Classes, renormalizeClasses: true).Top1;
            }
            result[name] = v;
        }
        return result;
    }

    /// <summary>Names of the prompt variants, in report order.</summary>
    public static readonly string[] PromptVariantNames =
        ["templates, mean (paper)", "templates, renormalised (open_clip)", "templates + WordNet glosses, mean (paper)", "templates + WordNet glosses, renormalised (open_clip)"];

    public RetrievalResult Retrieval(IAlignedProjector p) => ProjectorEvaluation.Retrieval(p, heldOut.Images, heldOut.Captions, heldOut.CaptionImage);

    public MethodScores Score(IAlignedProjector p) => new()
    {
        ZeroShot = sets.Keys.ToDictionary(k => k, k => ZeroShotSummary.From(ZeroShot(p, k))),
        ZeroShotStandardized = sets.Keys.ToDictionary(k => k, k => ZeroShotSummary.From(ZeroShot(p, k, standardized: true))),
        Retrieval = photo is null ? new() { ["heldout"] = Retrieval(p) }
            : new() { ["heldout"] = Retrieval(p), [PhotoKey] = ProjectorEvaluation.Retrieval(p, photo.Images, photo.Captions, photo.CaptionImage) },
        ProxyTop1 = Proxy(p),
    };

    public static string Line(string name, MethodScores s)
        => $"{name,-26} zero-shot " + string.Join("  ", s.ZeroShot.Select(kv => $"{kv.Key} {kv.Value.Top1:P1}")) +
           $" | held-out R@1 i2t {s.Retrieval["heldout"].ImageToText.R1:P1} t2i {s.Retrieval["heldout"].TextToImage.R1:P1}" +
           (s.Retrieval.TryGetValue(PhotoKey, out var ph) ? $" | photo R@1 i2t {ph.ImageToText.R1:P1} t2i {ph.TextToImage.R1:P1}" : "") +
           $" | proxy {s.ProxyTop1:P1}";

    /// <summary>Mean over seeds (top-1/top-5/mean-per-class and Recall@K averaged; counts from the first run).</summary>
    public static MethodScores Mean(IReadOnlyList<MethodScores> runs)
    {
        static ZeroShotSummary Z(IEnumerable<ZeroShotSummary> z) { var l = z.ToList(); return new(l.Average(x => x.Top1), l.Average(x => x.Top5), l[0].N, l.Average(x => x.MeanPerClass)); }
        static RecallAtK R(IEnumerable<RecallAtK> r)
        {
            var l = r.ToList();
            return new RecallAtK { R1 = l.Average(x => x.R1), R5 = l.Average(x => x.R5), R10 = l.Average(x => x.R10), MedianRank = l.Average(x => x.MedianRank),
                At = l[0].At.Keys.ToDictionary(k => k, k => l.Average(x => x.At[k])) };
        }
        var first = runs[0];
        return new MethodScores
        {
            ZeroShot = first.ZeroShot.Keys.ToDictionary(k => k, k => Z(runs.Select(r => r.ZeroShot[k]))),
            ZeroShotStandardized = first.ZeroShotStandardized?.Keys.ToDictionary(k => k, k => Z(runs.Select(r => r.ZeroShotStandardized![k]))),
            Retrieval = first.Retrieval.Keys.ToDictionary(k => k, k => new RetrievalResult
            {
                N = first.Retrieval[k].N, Captions = first.Retrieval[k].Captions,
                ImageToText = R(runs.Select(r => r.Retrieval[k].ImageToText)), TextToImage = R(runs.Select(r => r.Retrieval[k].TextToImage)),
            }),
            ProxyTop1 = runs.Average(r => r.ProxyTop1),
        };
    }

    public static AblationRow AblationRow(string name, string description, IReadOnlyList<MethodScores> runs)
    {
        var metrics = new Dictionary<string, Func<MethodScores, double>>();
        foreach (var k in runs[0].ZeroShot.Keys)
        {
            metrics[k] = s => s.ZeroShot[k].Top1;
            metrics[k + "_standardized"] = s => s.ZeroShotStandardized![k].Top1;
        }
        metrics["heldout_r1"] = s => (s.Retrieval["heldout"].ImageToText.R1 + s.Retrieval["heldout"].TextToImage.R1) / 2;
        if (runs[0].Retrieval.ContainsKey(PhotoKey))
        {
            metrics["photo_r1"] = s => (s.Retrieval[PhotoKey].ImageToText.R1 + s.Retrieval[PhotoKey].TextToImage.R1) / 2;
            metrics["photo_r5"] = s => (s.Retrieval[PhotoKey].ImageToText.R5 + s.Retrieval[PhotoKey].TextToImage.R5) / 2;
            metrics["photo_r10"] = s => (s.Retrieval[PhotoKey].ImageToText.R10 + s.Retrieval[PhotoKey].TextToImage.R10) / 2;
        }
        metrics["proxy"] = s => s.ProxyTop1;
        var n = runs[0].ZeroShot.ToDictionary(kv => kv.Key, kv => kv.Value.N);
        n["heldout"] = runs[0].Retrieval["heldout"].Captions;
        if (runs[0].Retrieval.TryGetValue(PhotoKey, out var photoRun)) n[PhotoKey] = photoRun.Captions;
        return new AblationRow
        {
            Name = name, Description = description, Seeds = Enumerable.Range(0, runs.Count).ToArray(), N = n,
            Mean = metrics.ToDictionary(kv => kv.Key, kv => runs.Average(kv.Value)),
            Std = metrics.ToDictionary(kv => kv.Key, kv => Std(runs.Select(kv.Value).ToList())),
        };
    }

    /// <summary>One console line of an ablation-style row (mean ± std over its seeds).</summary>
    public static string RowLine(AblationRow row)
    {
        string M(string k) => row.Mean.TryGetValue(k, out var m) ? $"{m:P1}±{row.Std[k]:P1}" : "-";
        return $"{row.Name.Trim(),-34} FM {M("fashion_mnist")}  MN {M("mnist")}  held-out R@1 {M("heldout_r1")}" +
               (row.Mean.ContainsKey("photo_r1") ? $"  photo R@1 {M("photo_r1")}" : "") + $"  proxy {M("proxy")}";
    }

    /// <summary>Sample standard deviation (n - 1); 0 for fewer than 2 values.</summary>
    public static double Std(IReadOnlyList<double> v)
    {
        if (v.Count < 2) return 0;
        double m = v.Average();
        return Math.Sqrt(v.Sum(x => (x - m) * (x - m)) / (v.Count - 1));
    }

    /// <param name="name">Set key.</param>
    /// <param name="set">Image features and labels.</param>
    /// <param name="classNames">Class names (prompt order).</param>
    /// <param name="templates">Prompt templates.</param>
    /// <param name="text">Text encoder of the prompts.</param>
    /// <param name="glosses">Per-class gloss sentences added to the templates for the prompt comparison; null = none.</param>
    public static LabelledTask LabelledTask(string name, (EmbeddingMatrix Features, int[] Labels, IReadOnlyList<string> ClassNames) set,
        IReadOnlyList<string> classNames, PromptTemplates templates, ITextEncoder text, ClassDescriptions? glosses = null)
    {
        var (prompts, promptClass) = Prompts(classNames, templates, text);
        if (glosses is null) return new LabelledTask(name, set.Features, set.Labels, classNames.ToArray(), prompts, promptClass);
        var extra = new List<string>(); var extraClass = new List<int>();
        for (int c = 0; c < classNames.Count; c++)
            foreach (var sentence in glosses.For(classNames[c])) { extra.Add(sentence); extraClass.Add(c); }
        var glossFeatures = extra.Count == 0 ? prompts : EmbeddingMatrix.Concat([prompts, text.EncodeBatch(extra).Pooled]);
        return new LabelledTask(name, set.Features, set.Labels, classNames.ToArray(), prompts, promptClass, glossFeatures, [.. promptClass, .. extraClass]);
    }

    /// <summary>One zero-shot task per proxy source (classes = that source's label values).</summary>
    /// <param name="proxy">The proxy split's pairs (source and label columns).</param>
    /// <param name="templates">Prompt templates.</param>
    /// <param name="text">Text encoder of the prompts.</param>
    /// <param name="images">Image features of the proxy rows to use instead of the stored ones (e.g. another layer); null = stored.</param>
    public static List<LabelledTask> ProxyTasks(StoredPairs proxy, PromptTemplates templates, ITextEncoder text, EmbeddingMatrix? images = null)
    {
        images ??= proxy.Image;
        var source = proxy.Column("source"); var label = proxy.Column("label");
        var tasks = new List<LabelledTask>();
        foreach (var src in source.Distinct().OrderBy(s => s, StringComparer.Ordinal))
        {
            var rows = proxy.UniqueImageRows.Where(r => source[r] == src).ToArray();
            var classes = rows.Select(r => label[r]).Distinct().OrderBy(s => s, StringComparer.Ordinal).ToArray();
            if (classes.Length < 2) continue;
            var names = classes.Select(c => c.Replace('_', ' ')).ToArray();
            var (prompts, promptClass) = Prompts(names, templates, text);
            tasks.Add(new LabelledTask("proxy-" + src, images.SelectRows(rows), rows.Select(r => Array.IndexOf(classes, label[r])).ToArray(), names, prompts, promptClass));
        }
        if (tasks.Count == 0) throw new InvalidDataException("The proxy set has no source with at least 2 classes.");
        return tasks;
    }

    public static RetrievalTask RetrievalTask(StoredPairs held)
    {
        // ImageIds[row] is already the index of the row's image in UniqueImageRows.
        return new RetrievalTask(held.UniqueImageEmbeddings(), held.Text!, held.ImageIds);
    }

    private static (EmbeddingMatrix, int[]) Prompts(IReadOnlyList<string> classNames, PromptTemplates templates, ITextEncoder text)
    {
        var sentences = new List<string>(); var cls = new List<int>();
        for (int c = 0; c < classNames.Count; c++)
            foreach (var s in templates.Apply(classNames[c])) { sentences.Add(s); cls.Add(c); }
        return (text.EncodeBatch(sentences).Pooled, cls.ToArray());
    }
}
