using System.Text.Json.Serialization;
using MLNet.Align.Evaluation;

namespace MLNet.Align.Demo;

/// <summary>Zero-shot summary of one labelled set (fractions in [0, 1]).</summary>
public sealed record ZeroShotSummary(
    [property: JsonPropertyName("top1")] double Top1,
    [property: JsonPropertyName("top5")] double Top5,
    [property: JsonPropertyName("n")] int N,
    [property: JsonPropertyName("mean_per_class")] double MeanPerClass)
{
    public static ZeroShotSummary From(ZeroShotResult r) => new(r.Top1, r.Top5, r.N, r.MeanPerClassAccuracy);
}

/// <summary>Everything one method (trained projector or baseline) scores in the demo.</summary>
public sealed record MethodScores
{
    [JsonPropertyName("zero_shot")] public required Dictionary<string, ZeroShotSummary> ZeroShot { get; init; }
    [JsonPropertyName("zero_shot_standardized")] public Dictionary<string, ZeroShotSummary>? ZeroShotStandardized { get; init; }
    [JsonPropertyName("retrieval")] public required Dictionary<string, RetrievalResult> Retrieval { get; init; }
    [JsonPropertyName("proxy_top1")] public double ProxyTop1 { get; init; }
}

/// <summary>One row of the ablation table: a recipe variant trained over several seeds.</summary>
public sealed record AblationRow
{
    [JsonPropertyName("name")] public required string Name { get; init; }
    [JsonPropertyName("description")] public required string Description { get; init; }
    [JsonPropertyName("seeds")] public required int[] Seeds { get; init; }
    [JsonPropertyName("n")] public required Dictionary<string, int> N { get; init; }
    [JsonPropertyName("mean")] public required Dictionary<string, double> Mean { get; init; }
    [JsonPropertyName("std")] public required Dictionary<string, double> Std { get; init; }
}

/// <summary>The demo's report.json.</summary>
public sealed record DemoReport
{
    [JsonPropertyName("quick")] public bool Quick { get; init; }
    [JsonPropertyName("encoders")] public required Dictionary<string, string> Encoders { get; init; }
    [JsonPropertyName("data")] public required Dictionary<string, int> Data { get; init; }
    [JsonPropertyName("recipe")] public required string Recipe { get; init; }
    [JsonPropertyName("stage1")] public required Dictionary<string, double> Stage1 { get; init; }
    [JsonPropertyName("zero_shot")] public required Dictionary<string, ZeroShotSummary> ZeroShot { get; init; }
    [JsonPropertyName("zero_shot_standardized")] public Dictionary<string, ZeroShotSummary>? ZeroShotStandardized { get; init; }
    [JsonPropertyName("retrieval")] public required Dictionary<string, RetrievalResult> Retrieval { get; init; }
    [JsonPropertyName("proxy_top1")] public double ProxyTop1 { get; init; }
    [JsonPropertyName("seeds")] public required Dictionary<string, MethodScores> Seeds { get; init; }
    [JsonPropertyName("baselines")] public required Dictionary<string, MethodScores> Baselines { get; init; }
    [JsonPropertyName("linear_probe")] public required Dictionary<string, LinearProbeResult> LinearProbe { get; init; }
    [JsonPropertyName("ablation")] public List<AblationRow>? Ablation { get; init; }
    [JsonPropertyName("selection")] public DemoSelection? Selection { get; init; }
    /// <summary>Default recipe's zero-shot top-1 per labelled set and prompt variant (mean over seeds); the headline
    /// numbers use the first variant (templates, class vectors averaged without renormalising, as the paper).</summary>
    [JsonPropertyName("prompt_variants")] public Dictionary<string, Dictionary<string, double>>? PromptVariants { get; init; }
    [JsonPropertyName("curation")] public DemoCuration? Curation { get; init; }
    [JsonPropertyName("candidate_check")] public DemoCandidateCheckResult? CandidateCheck { get; init; }
    /// <summary>`train --recipe auto` on the demo's pairs: every recipe, auto's choice and why, the data-scaling curve.</summary>
    [JsonPropertyName("auto")] public DemoAutoResult? Auto { get; init; }
    /// <summary>The serving showcase: each shown image with the reloaded zip's top-3 (paths relative to --out).</summary>
    [JsonPropertyName("predictions")] public required List<ShowcaseRow> Predictions { get; init; }
    /// <summary>How the showcase's images were chosen and how many were right.</summary>
    [JsonPropertyName("showcase")] public ShowcaseSummary? Showcase { get; init; }
    /// <summary>The search step: the held-out images indexed, the queries with their top hits, Recall@K through the index.</summary>
    [JsonPropertyName("search")] public DemoSearchSummary? Search { get; init; }
    /// <summary>The saved models, relative to --out.</summary>
    [JsonPropertyName("models")] public required Dictionary<string, string> Models { get; init; }
    [JsonPropertyName("timings_s")] public required Dictionary<string, double> TimingsS { get; init; }
}
