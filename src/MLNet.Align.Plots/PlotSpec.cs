namespace MLNet.Align.Plots;

/// <summary>One chart to render. Mirrors MLNet.Align.Evaluation.PlotSpec (the library side writes it as JSON).</summary>
public sealed class PlotSpec
{
    public string Kind { get; set; } = "";          // heatmap | bars | lines
    public string Path { get; set; } = "";
    public string Title { get; set; } = "";
    public int Width { get; set; }
    public int Height { get; set; }
    public string XLabel { get; set; } = "";
    public string YLabel { get; set; } = "";
    // heatmap
    public double?[][]? Values { get; set; }
    public string[]? RowLabels { get; set; }
    public string[]? ColumnLabels { get; set; }
    public string Format { get; set; } = "0.000";
    // bars
    public string[]? Series { get; set; }
    public string[]? Groups { get; set; }
    public double[][]? SeriesValues { get; set; }
    // lines
    public LineSeries[]? Lines { get; set; }
    public bool LogY { get; set; }
    public string Y2Label { get; set; } = "";
}

public sealed class LineSeries
{
    public string Name { get; set; } = "";
    public double[] X { get; set; } = [];
    public double[] Y { get; set; } = [];
    public bool RightAxis { get; set; }
}
