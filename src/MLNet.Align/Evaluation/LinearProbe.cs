using System.Diagnostics;
using System.Text.Json.Serialization;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers;
using MLNet.Align.Embeddings;

namespace MLNet.Align.Evaluation;

/// <summary>Linear-probe result; accuracies are fractions in [0, 1].</summary>
public sealed record LinearProbeResult
{
    /// <summary>Training rows.</summary>
    [JsonPropertyName("n_train")] public int NTrain { get; init; }
    /// <summary>Test rows.</summary>
    [JsonPropertyName("n_test")] public int NTest { get; init; }
    /// <summary>Number of distinct training classes.</summary>
    [JsonPropertyName("classes")] public int Classes { get; init; }
    /// <summary>Top-1 accuracy on the test split.</summary>
    [JsonPropertyName("top1")] public double Top1 { get; init; }
    /// <summary>Top-1 accuracy on the training split (to spot over/under-fitting).</summary>
    [JsonPropertyName("train_top1")] public double TrainTop1 { get; init; }
    /// <summary>Wall time of the fit, seconds.</summary>
    [JsonPropertyName("fit_seconds")] public double FitSeconds { get; init; }
}

/// <summary>
/// Linear probe on frozen image embeddings: per-feature mean/variance normalisation followed by multinomial logistic
/// regression (ML.NET <c>LbfgsMaximumEntropy</c>), fitted on a train split and scored by top-1 on a test split.
/// Deterministic: seeded <see cref="MLContext"/>, one training thread.
/// </summary>
public sealed class LinearProbe
{
    /// <summary>Probe settings.</summary>
    public sealed record Options
    {
        /// <summary>L2 weight of the logistic regression (ML.NET default 1).</summary>
        public float L2Regularization { get; init; } = 1f;
        /// <summary>L1 weight (ML.NET default 1).</summary>
        public float L1Regularization { get; init; } = 0f;
        /// <summary>Cap on L-BFGS iterations.</summary>
        public int MaximumIterations { get; init; } = 1000;
        /// <summary>Normalise each feature to zero mean, unit variance (fitted on the train split).</summary>
        public bool Normalize { get; init; } = true;
        /// <summary>MLContext seed.</summary>
        public int Seed { get; init; } = 0;
    }

    private sealed class Row
    {
        public float[] Features { get; set; } = Array.Empty<float>();
        public int Label { get; set; }
    }

    private sealed class Prediction
    {
        public int PredictedValue { get; set; }
    }

    private readonly MLContext _ml;
    private readonly int _dimension;

    private LinearProbe(MLContext ml, ITransformer model, int dimension, int classes)
    {
        _ml = ml; Model = model; _dimension = dimension; Classes = classes;
    }

    /// <summary>The fitted ML.NET chain (key mapping, normaliser, trainer); input columns Features (float[d]), Label (int).</summary>
    public ITransformer Model { get; }

    /// <summary>Number of distinct classes seen in training.</summary>
    public int Classes { get; }

    /// <summary>Fits the probe.</summary>
    /// <param name="features">Frozen features [n, d].</param>
    /// <param name="labels">Class per row [n] (any non-negative ints).</param>
    /// <param name="options">Settings; defaults when null.</param>
    /// <exception cref="ArgumentException">Label count != n, fewer than 2 rows or 2 classes, or a negative label.</exception>
    /// <exception cref="InvalidDataException">A feature is NaN or infinite (row and column named).</exception>
    public static LinearProbe Fit(EmbeddingMatrix features, IReadOnlyList<int> labels, Options? options = null)
    {
        options ??= new Options();
        DenseMath.RequireRows(features, 2, nameof(features));
        CheckLabels(features, labels);
        FiniteCheck.Require(features, "Linear-probe training features", "L-BFGS would fit NaN weights and predict one class");
        int classes = labels.Distinct().Count();
        if (classes < 2) throw new ArgumentException($"A probe needs at least 2 classes in training, got {classes}.", nameof(labels));

        var ml = new MLContext(options.Seed);
        var data = Load(ml, features, labels);
        IEstimator<ITransformer> pipe = ml.Transforms.Conversion.MapValueToKey("Label", keyOrdinality: Microsoft.ML.Transforms.ValueToKeyMappingEstimator.KeyOrdinality.ByValue);
        if (options.Normalize) pipe = pipe.Append(ml.Transforms.NormalizeMeanVariance("Features"));
        pipe = pipe
            .Append(ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy(new LbfgsMaximumEntropyMulticlassTrainer.Options
            {
                L2Regularization = options.L2Regularization,
                L1Regularization = options.L1Regularization,
                MaximumNumberOfIterations = options.MaximumIterations,
                NumberOfThreads = 1,
            }))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedValue", "PredictedLabel"));
        var model = pipe.Fit(data);
        return new LinearProbe(ml, model, features.Columns, classes);
    }

    /// <summary>Predicted class per row [n].</summary>
    /// <exception cref="ArgumentException">Width differs from the fitted one.</exception>
    /// <exception cref="InvalidDataException">A feature is NaN or infinite (row and column named).</exception>
    public int[] Predict(EmbeddingMatrix features)
    {
        DenseMath.RequireWidth(features, _dimension, nameof(features));
        FiniteCheck.Require(features, "Linear-probe features", "a NaN row has no meaningful prediction");
        var scored = Model.Transform(Load(_ml, features, new int[features.Rows]));
        return _ml.Data.CreateEnumerable<Prediction>(scored, reuseRowObject: false).Select(p => p.PredictedValue).ToArray();
    }

    /// <summary>Top-1 accuracy on labelled features.</summary>
    public double Accuracy(EmbeddingMatrix features, IReadOnlyList<int> labels)
    {
        CheckLabels(features, labels);
        var pred = Predict(features);
        int hit = 0;
        for (int i = 0; i < pred.Length; i++) if (pred[i] == labels[i]) hit++;
        return pred.Length == 0 ? 0 : hit / (double)pred.Length;
    }

    /// <summary>Fits on the train split and scores both splits.</summary>
    public static LinearProbeResult Run(EmbeddingMatrix train, IReadOnlyList<int> trainLabels, EmbeddingMatrix test, IReadOnlyList<int> testLabels, Options? options = null)
    {
        var sw = Stopwatch.StartNew();
        var probe = Fit(train, trainLabels, options);
        double fit = sw.Elapsed.TotalSeconds;
        return new LinearProbeResult
        {
            NTrain = train.Rows,
            NTest = test.Rows,
            Classes = probe.Classes,
            Top1 = probe.Accuracy(test, testLabels),
            TrainTop1 = probe.Accuracy(train, trainLabels),
            FitSeconds = fit,
        };
    }

    private static void CheckLabels(EmbeddingMatrix features, IReadOnlyList<int> labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        if (labels.Count != features.Rows)
            throw new ArgumentException($"Got {labels.Count} labels for {features.Rows} feature rows.", nameof(labels));
        for (int i = 0; i < labels.Count; i++)
            if (labels[i] < 0) throw new ArgumentException($"Label {labels[i]} of row {i} is negative.", nameof(labels));
    }

    private static IDataView Load(MLContext ml, EmbeddingMatrix features, IReadOnlyList<int> labels)
    {
        var rows = new Row[features.Rows];
        for (int i = 0; i < rows.Length; i++) rows[i] = new Row { Features = features.Row(i).ToArray(), Label = labels[i] };
        var schema = SchemaDefinition.Create(typeof(Row));
        schema[nameof(Row.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, features.Columns);
        return ml.Data.LoadFromEnumerable(rows, schema);
    }
}
